"""An upsert merged over the event's stored desired state (Cronofy's semantics): what a
request carries changes, what it omits is kept; attendees are invited and rejected one by
one; the validation of the newer fields at the API edge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.api.event_body import desired_event, event_upsert
from gateway.api.params import InvalidParam, Params
from gateway.domain.desired import DesiredEvent, Invitee

START, END = "2027-03-10T09:00:00Z", "2027-03-10T10:00:00Z"


def upsert(**fields):
    return event_upsert(Params.merge((), {"event_id": "e1", "summary": "S", "start": START,
                                          "end": END, **fields}))


def created(**fields) -> DesiredEvent:
    return upsert(**fields).merge(None)


FULL = {"description": "Agenda", "location": {"description": "Room 4", "lat": "51.5",
                                              "long": "-0.12"},
        "url": "https://app.example/1", "transparency": "transparent", "event_private": True,
        "reminders": [{"minutes": 30}, {"minutes": 10}], "color": "#DC2127",
        "conferencing": {"profile_id": "default"},
        "attendees": {"invite": [{"email": "a@example.org", "display_name": "Ann"},
                                 {"email": "b@example.org"}]}}


def test_a_create_takes_the_defaults_for_what_is_omitted():
    event = created()
    assert (event.description, event.location, event.geo, event.url) == ("", "", None, None)
    assert (event.transparency, event.extended_transparency, event.private) == (
        "opaque", None, False)
    assert event.reminders is None  # the calendar's defaults
    assert (event.attendees, event.color, event.conferencing) == ((), None, False)


def test_the_issues_re_upsert_keeps_everything_it_does_not_carry():
    current = created(**FULL)
    merged = upsert(summary="Renamed", attendees={"reject": [{"email": "B@example.org"}]}
                    ).merge(current)
    assert merged.summary == "Renamed"
    assert merged.attendees == (Invitee("a@example.org", "Ann"),)
    assert merged.removed == (Invitee("b@example.org"),)  # to be told
    for name in ("description", "location", "geo", "url", "transparency", "private",
                 "reminders", "color", "conferencing"):
        assert getattr(merged, name) == getattr(current, name), name
    assert merged.start == datetime(2027, 3, 10, 9, tzinfo=UTC)


def test_given_fields_change_and_null_clears_url_and_location():
    current = created(**FULL)
    merged = upsert(url=None, location=None, description="", reminders=[],
                    event_private=False).merge(current)
    assert (merged.url, merged.location, merged.geo, merged.description) == (
        None, "", None, "")
    assert merged.reminders == () and merged.private is False
    assert merged.color == "#dc2127"  # not carried: kept


def test_invite_adds_and_renames_reject_and_remove_take_off():
    current = created(attendees={"invite": [{"email": "a@example.org"},
                                            {"email": "b@example.org", "display_name": "B"}]})
    merged = upsert(attendees={"invite": [{"email": "c@example.org"},
                                          {"email": "A@example.org", "display_name": "Ann"}],
                               "remove": [{"email": "b@example.org"}]}).merge(current)
    assert merged.attendees == (Invitee("a@example.org", "Ann"), Invitee("c@example.org"))
    assert merged.removed == (Invitee("b@example.org", "B"),)
    # Invited and rejected in one request: rejected; someone never invited is nobody to tell.
    again = upsert(attendees={"invite": [{"email": "d@example.org"}],
                              "reject": [{"email": "d@example.org"},
                                         {"email": "z@example.org"}]}).merge(merged)
    assert again.attendees == merged.attendees and again.removed == ()


def test_removed_guests_wait_for_the_write_that_tells_them():
    current = upsert(attendees={"reject": [{"email": "b@example.org"}]}).merge(
        created(attendees={"invite": [{"email": "b@example.org"}]}))
    later = upsert(summary="Later").merge(current, pending=True)
    assert later.removed == (Invitee("b@example.org"),)  # still not applied: still to tell
    assert upsert(summary="Later").merge(current, pending=False).removed == ()
    back = upsert(attendees={"invite": [{"email": "b@example.org"}]}).merge(current,
                                                                             pending=True)
    assert back.removed == () and back.attendees == (Invitee("b@example.org"),)


def test_extended_transparency_sets_transparency_and_transparency_resets_it():
    event = created(extended_transparency="working_elsewhere")
    assert (event.transparency, event.extended_transparency) == ("transparent",
                                                                 "working_elsewhere")
    assert event.draft("k").busy_state == "working_elsewhere"
    plain = upsert(transparency="opaque").merge(event)
    assert (plain.transparency, plain.extended_transparency) == ("opaque", None)
    assert plain.draft("k").busy_state == "opaque"
    assert upsert().merge(event).extended_transparency == "working_elsewhere"


def test_reminders_create_only_apply_only_when_creating():
    first = created(reminders=[{"minutes": 45}], reminders_create_only=True)
    assert first.reminders == (45,) and first.reminders_create_only
    later = upsert(reminders=[{"minutes": 5}], reminders_create_only=True).merge(first)
    assert later.reminders == (45,) and later.draft("k").reminders_create_only
    plain = upsert(reminders=[{"minutes": 5}]).merge(first)
    assert plain.reminders == (5,) and not plain.reminders_create_only


def test_the_stored_form_round_trips_and_old_rows_keep_their_meaning():
    event = created(**FULL, extended_transparency="tentative", reminders_create_only=True)
    assert DesiredEvent.from_stored(event.to_stored()) == event
    assert DesiredEvent.from_stored(created(reminders=[]).to_stored()).reminders == ()
    old = {"summary": "S", "start": START, "end": END, "reminders": []}  # an older row
    assert DesiredEvent.from_stored(old).reminders is None
    assert set(created(summary="x").to_stored()) == {  # no newer key when none is set
        "summary", "description", "location", "start", "end", "start_tzid", "end_tzid",
        "transparency", "attendees", "url", "private", "reminders", "conferencing"}


def test_gated_fields_name_what_a_provider_must_offer():
    assert created().gated_fields() == set()
    assert upsert(**FULL).gated_fields() == {"color", "url", "location.geo"}
    assert upsert(url=None, color=None).gated_fields() == set()  # clearing needs nothing
    assert upsert(extended_transparency="out_of_office").gated_fields() == {
        "extended_transparency.out_of_office"}
    assert upsert(extended_transparency="transparent").gated_fields() == set()


@pytest.mark.parametrize(("fields", "field"), [
    ({"color": "red"}, "color"),
    ({"url": "https://x.example/a b"}, "url"),
    ({"url": "https://x.example/" + "a" * 2048}, "url"),
    ({"location": {"description": "x", "lat": "91", "long": "0"}}, "location"),
    ({"location": {"description": "x", "lat": "1"}}, "location"),
    ({"location": {"lat": "north", "long": "0"}}, "location"),
    ({"location": {"lat": True, "long": "0"}}, "location"),
    ({"extended_transparency": "busy"}, "extended_transparency"),
    ({"attendees": {"reject": "b@example.org"}}, "attendees"),
])
def test_bad_new_fields_are_422s_naming_them(fields, field):
    with pytest.raises(InvalidParam) as raised:
        upsert(**fields)
    assert raised.value.field == field


def test_desired_event_is_the_create():
    assert desired_event(Params.merge((), {"summary": "S", "start": START, "end": END,
                                           **FULL})) == created(**FULL)
