"""Calgate's explain extension: each obstacle named for a start, on hand-made members."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.domain.availability.busy import BusyEvent
from gateway.domain.availability.explain import MemberState, explain
from gateway.domain.availability.intervals import seconds
from gateway.domain.availability.query import Buffer, Group, Member, Query

UTC_ZONE = ZoneInfo("Etc/UTC")


def t(hour: int, minute: int = 0) -> int:
    return seconds(datetime(2030, 1, 7, hour, minute, tzinfo=UTC))


def event(uid: str, start: int, end: int, **fields) -> BusyEvent:
    return BusyEvent("cal_a", uid, datetime.fromtimestamp(start, UTC),
                     datetime.fromtimestamp(end, UTC), **fields)


def query(*members: Member, needed: int | str = "all", **fields) -> Query:
    return Query((Group(members, needed),), 3600, ((t(9), t(17)),), **fields)


def reasons(why, sub):
    return [(o.reason, o.event.event_uid if o.event else None)
            for s, found in why.members if s == sub for o in found]


def test_busy_and_buffers_name_their_events():
    a = Member("acc_a")
    q = query(a, buffer=Buffer(before=1800, after=900))
    state = MemberState(a, UTC_ZONE, [event("e1", t(10), t(11)), event("e2", t(12, 10),
                                                                       t(13)),
                                      event("e3", t(8), t(10, 45))])
    why = explain(q, {"acc_a": state}, t(11))
    assert not why.offered and why.groups == ((0, 1),)
    assert reasons(why, "acc_a") == [("buffer_before", "e1"), ("buffer_after", "e2"),
                                     ("buffer_before", "e3")]
    at_ten = explain(q, {"acc_a": state}, t(10))
    assert reasons(at_ten, "acc_a") == [("busy", "e1"), ("busy", "e3")]


def test_free_declined_and_tentative_events_are_no_obstacle_unless_tentative_is_busy():
    a = Member("acc_a")
    state = MemberState(a, UTC_ZONE, [
        event("free", t(10), t(11), transparency="transparent"),
        event("no", t(10), t(11), participation="declined"),
        event("maybe", t(10), t(11), status="tentative")])
    assert reasons(explain(query(a), {"acc_a": state}, t(10)), "acc_a") == [
        ("busy", "maybe")]
    relaxed = explain(query(a), {"acc_a": state}, t(10), tentative_busy=False)
    assert relaxed.offered and reasons(relaxed, "acc_a") == []


def test_periods_windows_grid_and_unavailable_members():
    a = Member("acc_a", available_periods=((t(9), t(10, 30)),))
    b = Member("acc_b", managed_availability=True)
    c = Member("acc_c")
    states = {"acc_a": MemberState(a, UTC_ZONE, []),
              "acc_b": MemberState(b, UTC_ZONE, [], windows=[(t(13), t(15))]),
              "acc_c": MemberState(c, UTC_ZONE, [], unavailable="profile_disconnected")}
    q = query(a, b, c, needed=1, start_interval=1800)
    why = explain(q, states, t(16, 30))
    assert reasons(why, "acc_a") == [("query_periods", None), ("available_periods", None)]
    assert reasons(why, "acc_b") == [("query_periods", None), ("managed_availability", None)]
    assert reasons(why, "acc_c") == [("unavailable", None)]
    assert not why.offered and why.groups == ((0, 1),)
    assert explain(q, states, t(9, 30)).offered
    off = explain(q, states, t(9, 10))
    assert off.off_grid and not off.offered and off.groups == ((1, 1),)
