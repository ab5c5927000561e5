"""POST /v1/availability over the mirror (API.md s8.1), on both databases: Cronofy's shapes,
both kinds of bearer, the busy rules, pending writes, unavailable members, limits, explain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from gateway.persistence.tables import calendars
from providers.memory.provider import WORLD
from providers.model import Event
from tests.integration.test_read_your_writes import apply_writes
from tests.support.linked import Linked, busy_pair, hour

PATH = "/v1/availability"


def z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def app(member: Linked) -> dict[str, str]:
    return {"Authorization": f"Bearer {member.client_secret}"}


def ask(http, headers, subs, start, end, **extra):
    """A one-group question over [start, end) for 60 minutes."""
    body = {"participants": [{"members": [{"sub": s} for s in subs], "required": "all"}],
            "required_duration": {"minutes": 60},
            "query_periods": [{"start": z(start), "end": z(end)}]} | extra
    return http.post(PATH, headers=headers, json=body)


def periods(r) -> list[tuple[str, str, list[str]]]:
    assert r.status_code == 200, r.text
    return [(p["start"], p["end"], [x["sub"] for x in p["participants"]])
            for p in r.json()["available_periods"]]


def test_two_members_periods_and_slots_by_client_secret(http, link):
    a, b = busy_pair(link, (26, 27), (28, 29))
    r = ask(http, app(a), [a.subject, b.subject], hour(24), hour(32))
    assert periods(r) == [(z(hour(24)), z(hour(26)), [a.subject, b.subject]),
                          (z(hour(27)), z(hour(28)), [a.subject, b.subject]),
                          (z(hour(29)), z(hour(32)), [a.subject, b.subject])]
    r = ask(http, app(a), [a.subject, b.subject], hour(24), hour(32),
            response_format="slots", start_interval={"minutes": 30})
    slots = r.json()["available_slots"]
    assert [s["start"] for s in slots] == [z(hour(h)) for h in (24, 25, 27, 29, 30, 31)]
    assert all(s["participants"] == [{"sub": a.subject}, {"sub": b.subject}] for s in slots)


def test_one_of_two_lists_who_is_free(http, link):
    a, b = link(), link()
    a.put("a1", hour(24), hour(30))
    a.sync()
    b.sync()
    body = {"participants": [{"members": [{"sub": a.subject}, {"sub": b.subject}],
                              "required": 1}],
            "required_duration": {"minutes": 60}, "response_format": "overlapping_slots",
            "start_interval": {"minutes": 15},
            "query_periods": [{"start": z(hour(29)), "end": z(hour(31))}]}
    slots = http.post(PATH, headers=app(a), json=body).json()["available_slots"]
    assert [(s["start"], [p["sub"] for p in s["participants"]]) for s in slots] == [
        (z(hour(29)), [b.subject]), (z(hour(29) + timedelta(minutes=15)), [b.subject]),
        (z(hour(29) + timedelta(minutes=30)), [b.subject]),
        (z(hour(29) + timedelta(minutes=45)), [b.subject]), (z(hour(30)), [a.subject, b.subject])]


def test_free_events_declined_invitations_and_tentative(http, link):
    a = link()
    a.put("free", hour(24), hour(25), transparency="transparent")
    a.put("gone", hour(25), hour(26), status="cancelled")
    a.put("no", hour(26), hour(27), participation_status="declined")
    a.put("maybe", hour(27), hour(28), participation_status="tentative")
    a.put("pencil", hour(28), hour(29), status="tentative")
    a.sync()
    busy_tentative = ask(http, app(a), [a.subject], hour(24), hour(30))
    assert periods(busy_tentative) == [(z(hour(24)), z(hour(27)), [a.subject]),
                                       (z(hour(29)), z(hour(30)), [a.subject])]
    free_tentative = ask(http, app(a), [a.subject], hour(24), hour(30),
                         calgate_tentative_busy=False)
    assert periods(free_tentative) == [(z(hour(24)), z(hour(30)), [a.subject])]


def test_buffers_keep_room_around_events(http, link):
    a = link()
    a.put("a1", hour(26), hour(27))
    a.sync()
    r = ask(http, app(a), [a.subject], hour(24), hour(30),
            buffer={"before": {"minutes": 30}, "after": {"minimum": {"minutes": 15}}})
    # A meeting must end 15 minutes before the event and start 30 minutes after it.
    assert periods(r) == [(z(hour(24)), z(hour(26) - timedelta(minutes=15)), [a.subject]),
                          (z(hour(27) + timedelta(minutes=30)), z(hour(30)), [a.subject])]


def test_all_day_event_fills_the_members_local_day(http, link, gateway):
    a = link()
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    a.put("holiday", day, day + timedelta(days=1))
    a.sync()
    start = datetime.combine(day, datetime.min.time(), UTC) - timedelta(hours=12)
    r = ask(http, app(a), [a.subject], start, start + timedelta(hours=48))
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    assert periods(r) == [(z(start), z(midnight), [a.subject]),
                          (z(midnight + timedelta(days=1)), z(start + timedelta(hours=48)),
                           [a.subject])]
    assert isinstance(day, date)


def _next_dst_day() -> tuple[str, date]:
    """The first day from three days on whose length is not 24 hours, in a zone that has
    one within the sync window (New York's and Sydney's changes are never 4 months apart)."""
    first = datetime.now(UTC).date() + timedelta(days=3)
    for offset in range(200):
        day = first + timedelta(days=offset)
        for zone in ("America/New_York", "Australia/Sydney"):
            tz = ZoneInfo(zone)
            start = datetime.combine(day, time(), tz)
            end = datetime.combine(day + timedelta(days=1), time(), tz)
            if end.astimezone(UTC) - start.astimezone(UTC) != timedelta(hours=24):
                return zone, day
    raise AssertionError("no DST change within 200 days")


def test_all_day_event_on_a_dst_day_fills_the_calendars_local_day(http, link):
    zone, day = _next_dst_day()
    a = link()
    upstream = WORLD.accounts[a.upstream].calendars[a.upstream_calendar]
    upstream.calendar = replace(upstream.calendar, tzid=zone)
    a.put("holiday", day, day + timedelta(days=1))
    a.sync()
    tz = ZoneInfo(zone)
    midnight = datetime.combine(day, time(), tz).astimezone(UTC)
    next_midnight = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    assert next_midnight - midnight in (timedelta(hours=23), timedelta(hours=25))
    start = midnight - timedelta(hours=12)
    r = ask(http, app(a), [a.subject], start, start + timedelta(hours=48))
    assert periods(r) == [(z(start), z(midnight), [a.subject]),
                          (z(next_midnight), z(start + timedelta(hours=48)), [a.subject])]


def test_a_booked_slot_vanishes_at_once_and_a_pending_delete_frees_it(http, gateway, link):
    a = link()
    a.sync()
    token = a.token("read_write")
    before = ask(http, token, [a.subject], hour(24), hour(28))
    assert periods(before) == [(z(hour(24)), z(hour(28)), [a.subject])]
    booked = http.post(f"/v1/calendars/{a.calendar_id}/events", headers=token, json={
        "event_id": "booking", "summary": "Booked", "start": z(hour(25)), "end": z(hour(26))})
    assert booked.status_code == 202
    after = ask(http, app(a), [a.subject], hour(24), hour(28))
    assert periods(after) == [(z(hour(24)), z(hour(25)), [a.subject]),
                              (z(hour(26)), z(hour(28)), [a.subject])]
    apply_writes(gateway)
    r = http.request("DELETE", f"/v1/calendars/{a.calendar_id}/events", headers=token,
                     json={"event_id": "booking"})
    assert r.status_code == 202
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == [
        (z(hour(24)), z(hour(28)), [a.subject])]


def test_a_disconnected_member_is_unavailable_with_its_reason(http, link):
    a, b = link(), link()
    a.sync()
    b.sync()
    WORLD.accounts[b.upstream].password = "changed"
    engine_error = None
    try:
        b.sync()
    except AssertionError as exc:  # the sync reports the refusal; the profile is marked
        engine_error = exc
    assert engine_error is not None
    r = ask(http, app(a), [a.subject, b.subject], hour(24), hour(28))
    assert r.json()["available_periods"] == []
    assert r.json()["calgate_unavailable_members"] == [
        {"sub": b.subject, "reason": "profile_disconnected", "profile_id": b.profile_id}]
    body = {"participants": [{"members": [{"sub": a.subject}, {"sub": b.subject}],
                              "required": 1}],
            "required_duration": {"minutes": 60},
            "query_periods": [{"start": z(hour(24)), "end": z(hour(28))}]}
    one = http.post(PATH, headers=app(a), json=body)
    assert periods(one) == [(z(hour(24)), z(hour(28)), [a.subject])]


def test_a_member_not_synced_yet_is_unavailable(http, link, gateway):
    a = link()  # linked, its first sync not run yet
    r = ask(http, app(a), [a.subject], hour(24), hour(28))
    assert r.json() == {"available_periods": [], "calgate_unavailable_members": [
        {"sub": a.subject, "reason": "profile_not_synced", "profile_id": a.profile_id}]}
    a.sync()
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == [
        (z(hour(24)), z(hour(28)), [a.subject])]
    with gateway.engine.begin() as conn:  # a calendar listed, its events not read yet
        conn.execute(update(calendars).where(calendars.c.id == a.calendar_id)
                     .values(synced_at=None))
    r = ask(http, app(a), [a.subject], hour(24), hour(28))
    assert r.json()["calgate_unavailable_members"] == [
        {"sub": a.subject, "reason": "calendar_not_synced", "profile_id": a.profile_id}]


def test_an_access_token_sees_only_its_own_account(http, link):
    a, b = link(), link()
    a.sync()
    b.sync()
    token = a.token("read_free_busy")
    assert periods(ask(http, token, [a.subject], hour(24), hour(26))) == [
        (z(hour(24)), z(hour(26)), [a.subject])]
    r = ask(http, token, [a.subject, b.subject], hour(24), hour(26))
    assert r.status_code == 422 and "participants.members.sub" in r.json()["errors"]
    assert ask(http, a.token("list_calendars"), [a.subject], hour(24),
               hour(26)).status_code == 403
    assert ask(http, {"Authorization": "Bearer nope"}, [a.subject], hour(24),
               hour(26)).status_code == 401


def test_another_apps_account_is_unknown(http, link, gateway):
    a = link()
    from tests.support.oauth import make_client

    other = make_client(gateway)
    r = ask(http, {"Authorization": f"Bearer {other.secret}"}, [a.subject], hour(24),
            hour(26))
    assert r.status_code == 422 and r.json()["errors"]["participants.members.sub"][0][
        "key"] == "errors.unknown_sub"


def _base(sub: str) -> dict:
    return {"participants": [{"members": [{"sub": sub}], "required": "all"}],
            "required_duration": {"minutes": 60},
            "query_periods": [{"start": z(hour(24)), "end": z(hour(26))}]}


@pytest.mark.parametrize(("change", "field"), [
    ({"required_duration": []}, "required_duration"),
    ({"required_duration": {"minutes": 0}}, "required_duration"),
    ({"required_duration": {"minutes": 1441}}, "required_duration"),
    ({"query_periods": []}, "query_periods"),
    ({"query_periods": [{"start": z(hour(24)), "end": z(hour(24 + 24 * 36))}]},
     "query_periods"),
    ({"query_periods": [{"start": z(hour(24)), "end": z(hour(25))}] * 51}, "query_periods"),
    ({"query_periods": [{"start": z(hour(25)), "end": z(hour(24))}]}, "query_periods.end"),
    ({"query_periods": [{"start": "soon", "end": z(hour(24))}]}, "query_periods.start"),
    ({"participants": []}, "participants"),
    ({"participants": [{"members": []}]}, "participants.members"),
    ({"participants": [{"members": [{"sub": "x"}], "required": 2}]},
     "participants.required"),
    ({"participants": [{"members": [{"sub": "x"}]}] * 11}, "participants"),
    ({"participants": [{"members": [{"sub": f"acc_{i}"} for i in range(11)]}]},
     "participants.members"),
    ({"participants": [{"members": [{"nosub": 1}]}]}, "participants.members.sub"),
    ({"start_interval": {"minutes": 7}}, "start_interval"),
    ({"buffer": {"before": {"minutes": -1}}}, "buffer.before"),
    ({"buffer": {"after": {"minimum": {"minutes": 30}, "maximum": {"minutes": 10}}}},
     "buffer.after.maximum"),
    ({"response_format": "blocks"}, "response_format"),
    ({"max_results": 513}, "max_results"),
    ({"max_results": 0}, "max_results"),
    ({"explain": True}, "explain_at"),
    ({"explain": True, "explain_at": z(hour(24 + 72))}, "explain_at"),
    ({"query_slots": [{"start": z(hour(24))}]}, "query_slots"),
    ({"participants": [{"members": [{"sub": "acc_nobody"}]}]}, "participants.members.sub"),
])
def test_each_limit_is_a_422_naming_the_field(http, link, change, field):
    a = link()
    r = http.post(PATH, headers=app(a), json=_base(a.subject) | change)
    assert r.status_code == 422, r.text
    assert list(r.json()["errors"]) == [field]


def test_explain_names_the_busy_calendar_and_hides_text_without_read_events(http, link):
    a, b = link(), link()
    a.put("a1", hour(25), hour(26), summary="Dentist")
    a.sync()
    b.sync()
    extra = {"explain": True, "explain_at": z(hour(25))}
    r = ask(http, app(a), [a.subject, b.subject], hour(24), hour(28), **extra)
    why = r.json()["calgate_explanation"]
    assert why["bookable"] is False and why["groups"] == [{"free": 1, "required": 2}]
    reasons = {m["sub"]: m["reasons"] for m in why["members"]}
    assert reasons[b.subject] == []
    (busy,) = reasons[a.subject]
    assert busy["reason"] == "busy" and busy["calendar_id"] == a.calendar_id
    assert busy["event_uid"].startswith("evt_") and "summary" not in busy
    own = ask(http, a.token("read_events"), [a.subject], hour(24), hour(28), **extra)
    (busy,) = own.json()["calgate_explanation"]["members"][0]["reasons"]
    assert busy["summary"] == "Dentist"
    later = ask(http, a.token("read_free_busy"), [a.subject], hour(24), hour(28),
                explain=True, explain_at=z(hour(26) + timedelta(minutes=10)),
                buffer={"before": {"minutes": 30}})
    (buffer,) = later.json()["calgate_explanation"]["members"][0]["reasons"]
    assert buffer["reason"] == "buffer_before" and "summary" not in buffer


def test_each_instance_of_a_recurring_event_is_busy(http, link):
    a = link()
    WORLD.put(a.upstream, a.upstream_calendar, "daily", [Event(
        resource_id="daily", instance_id=f"daily-{d}", start=hour(24 + 24 * d),
        end=hour(25 + 24 * d), recurring=True) for d in range(3)])
    a.sync()
    r = ask(http, app(a), [a.subject], hour(23), hour(24 + 24 * 2 + 2))
    assert [(s, e) for s, e, _ in periods(r)] == [
        (z(hour(23)), z(hour(24))), (z(hour(25)), z(hour(48))),
        (z(hour(49)), z(hour(72))), (z(hour(73)), z(hour(74)))]


def test_a_repeated_question_follows_every_sync(http, gateway, link):
    """The busy times of a repeated question are kept between changes, never past one: an
    event added upstream and synced is busy in the next answer, and freed once removed."""
    a = link()
    a.sync()
    cache = gateway.availability.spans
    assert cache is not None
    whole = [(z(hour(24)), z(hour(28)), [a.subject])]
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == whole
    hits = cache.hits
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == whole
    assert cache.hits == hits + 1  # the second answer read no events
    a.put("upstream", hour(25), hour(26))
    a.sync()
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == [
        (z(hour(24)), z(hour(25)), [a.subject]), (z(hour(26)), z(hour(28)), [a.subject])]
    WORLD.remove(a.upstream, a.upstream_calendar, "upstream")
    a.sync()
    assert periods(ask(http, app(a), [a.subject], hour(24), hour(28))) == whole
