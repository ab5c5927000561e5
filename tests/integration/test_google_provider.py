"""The Google provider against the Google emulator: real google-api-python-client and
google-auth over HTTP, every request visible in the emulator's log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

import providers.google.client as google_client
from providers.errors import Conflict, CursorExpired, Forbidden, NotFound
from providers.google.mapping import MANAGED_KEY
from providers.google.oauth import CALENDARLIST_READONLY
from providers.model import EventDraft, Person, SyncCursor, TimeWindow
from tests.contract.harness_google import open_for, timed
from tests.emulators.google.shared import new_email, shared_emulator
from tests.support import aio

WINDOW = TimeWindow(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2027, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def emu():
    emulator = shared_emulator()
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def email(emu):
    return emu.add_user(new_email(), tz="Europe/Berlin")


@pytest.fixture
def provider(emu, email):
    provider = open_for(emu, email)
    yield provider
    aio.run(provider.close())


def api_calls(emu, email, since=0):
    """(api method or path, status) of this user's requests after index ``since``."""
    return [(r.api_method or r.path, r.status) for r in emu.requests[since:]
            if r.user in (None, email)]


def mark(emu):
    return len(emu.requests)


def draft(key: str, **changes) -> EventDraft:
    values = {"managed_key": key, "summary": "Mentoring", "start": at(20, 14),
              "end": at(20, 15)}
    return EventDraft(**{**values, **changes})


def test_verify_names_the_account_by_its_primary_calendar(emu, email, provider):
    info = aio.run(provider.verify())
    assert (info.profile_name, info.upstream_id) == (email, email)


def test_calendars_carry_roles_colours_and_the_primary_flag(emu, email, provider):
    other = emu.add_user(new_email("colleague"))
    shared = emu.add_calendar(other, "Team")
    emu.share_calendar(shared, email, "reader")
    busy_only = emu.add_calendar(other, "Rooms")
    emu.share_calendar(busy_only, email, "freeBusyReader")
    calendars = {c.calendar_id: c for c in aio.run(provider.list_calendars())}
    assert calendars[email].primary and not calendars[email].readonly
    assert calendars[shared].readonly and calendars[shared].name == "Team"
    assert calendars[busy_only].readonly
    assert calendars[email].tzid == "Europe/Berlin"


def test_create_calendar_appears_with_owner_role_and_colour(emu, email, provider):
    created = aio.run(provider.create_calendar("Mentoring", "#1A2B3C"))
    listed = {c.calendar_id: c for c in aio.run(provider.list_calendars())}
    assert listed[created.calendar_id].name == "Mentoring"
    assert not listed[created.calendar_id].readonly
    assert listed[created.calendar_id].color == "#1a2b3c"
    with pytest.raises(Conflict):
        aio.run(provider.create_calendar("mentoring", None))
    # Made with calendar.app.created: the app may write events there.
    written = aio.run(provider.put_event(created.calendar_id, draft("k-cal"), None, None))
    assert emu.event(email, created.calendar_id, written.resource_id)["summary"] == "Mentoring"


def test_full_sync_pages_through_every_page(emu, email, provider, monkeypatch):
    monkeypatch.setattr(google_client, "PAGE_SIZE", 2)
    for day in range(2, 7):
        emu.add_event(email, email, {"id": f"ev{day}x", "summary": f"E{day}",
                                     **timed(at(day), timedelta(hours=1))})
    start = mark(emu)
    changes = aio.run(provider.sync(email, None, WINDOW))
    assert changes.full and sorted(changes.changed) == [f"ev{d}x" for d in range(2, 7)]
    listings = [r for r in emu.requests[start:] if r.api_method == "events.list"]
    assert len(listings) == 3
    assert [("pageToken" in r.query) for r in listings] == [False, True, True]
    assert all(r.query["timeMin"] == ["2027-03-01T00:00:00Z"] for r in listings)


def test_incremental_sync_is_one_request_and_keeps_to_the_window(emu, email, provider):
    for uid, day in (("keepa", 2), ("edita", 3), ("movea", 4), ("dropa", 5)):
        emu.add_event(email, email, {"id": uid, "summary": uid,
                                     **timed(at(day), timedelta(hours=1))})
    first = aio.run(provider.sync(email, None, WINDOW))
    emu.update_event(email, email, "edita", {"summary": "Edited"})
    emu.move_event(email, email, "movea", at(20, 9) + timedelta(days=30),
                   at(20, 10) + timedelta(days=30))
    emu.cancel_event(email, email, "dropa")
    start = mark(emu)
    second = aio.run(provider.sync(email, first.cursor, WINDOW))
    assert api_calls(emu, email, start) == [("events.list", 200)]
    (listing,) = [r for r in emu.requests[start:] if r.api_method == "events.list"]
    assert "syncToken" in listing.query and "timeMin" not in listing.query
    assert not second.full
    assert [e.summary for e in second.changed["edita"]] == ["Edited"]
    assert second.changed["movea"] == []  # moved out of the window: no instances left
    assert second.deleted == ("dropa",)
    assert "keepa" not in second.changed
    third = aio.run(provider.sync(email, second.cursor, WINDOW))
    assert third.changed == {} and third.deleted == ()


def series(emu, email, uid="weekly1"):
    emu.add_event(email, email, {
        "id": uid, "summary": "Weekly",
        "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2027-03-01T10:00:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"]})


def test_a_changed_instance_resends_the_whole_series_in_the_window(emu, email, provider):
    series(emu, email)
    first = aio.run(provider.sync(email, None, WINDOW))
    assert len(first.changed["weekly1"]) == 5  # Mondays of March 2027
    emu.update_event(email, email, "weekly1_20270315T080000Z", {"summary": "Special"})
    emu.cancel_event(email, email, "weekly1_20270322T080000Z")
    start = mark(emu)
    second = aio.run(provider.sync(email, first.cursor, WINDOW))
    assert [c[0] for c in api_calls(emu, email, start)] == ["events.list", "events.instances"]
    instances = second.changed["weekly1"]
    assert len(instances) == 4  # one cancelled
    assert {e.instance_id for e in instances} == {
        "weekly1_20270301T080000Z", "weekly1_20270308T080000Z", "weekly1_20270315T080000Z",
        "weekly1_20270329T070000Z"}  # after the DST change 09:00 Berlin is 07:00 UTC
    assert [e.summary for e in instances if e.instance_id.endswith("0315T080000Z")] == [
        "Special"]
    emu.cancel_event(email, email, "weekly1")
    third = aio.run(provider.sync(email, second.cursor, WINDOW))
    assert third.deleted == ("weekly1",) and "weekly1" not in third.changed


def test_expired_sync_token_means_cursor_expired_then_a_full_resync(emu, email, provider):
    emu.add_event(email, email, {"id": "single1", **timed(at(3), timedelta(hours=1))})
    first = aio.run(provider.sync(email, None, WINDOW))
    emu.expire_sync_tokens()
    with pytest.raises(CursorExpired):
        aio.run(provider.sync(email, first.cursor, WINDOW))
    again = aio.run(provider.sync(email, None, WINDOW))
    assert again.full and list(again.changed) == ["single1"]
    with pytest.raises(CursorExpired):
        aio.run(provider.sync(email, SyncCursor('{"v": 99}'), WINDOW))


def test_a_moved_window_lists_everything_again(emu, email, provider):
    emu.add_event(email, email, {"id": "single2", **timed(at(3), timedelta(hours=1))})
    first = aio.run(provider.sync(email, None, WINDOW))
    later = TimeWindow(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    start = mark(emu)
    second = aio.run(provider.sync(email, first.cursor, later))
    assert second.full and "single2" in second.changed
    assert "syncToken" not in emu.requests[start].query


def test_all_fields_round_trip(emu, email, provider):
    written = aio.run(provider.put_event(email, draft(
        "k-fields", description="Notes", location="Room 4", transparency="transparent",
        private=True, url="https://app.example.com/s/1", reminders_minutes=(10, 60),
        start=datetime(2027, 3, 20, 13, tzinfo=UTC), end=datetime(2027, 3, 20, 14, tzinfo=UTC),
        start_tzid="America/New_York", end_tzid="America/New_York"), None, None))
    stored = emu.event(email, email, written.resource_id)
    assert stored["extendedProperties"]["private"][MANAGED_KEY] == "k-fields"
    assert stored["start"] == {"dateTime": "2027-03-20T09:00:00-04:00",
                               "timeZone": "America/New_York"}
    assert stored["reminders"] == {"useDefault": False, "overrides": [
        {"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 60}]}
    (event,) = aio.run(provider.sync(email, None, WINDOW)).changed[written.resource_id]
    assert (event.description, event.location, event.transparency, event.private,
            event.url, event.start_tzid, event.managed_key) == (
        "Notes", "Room 4", "transparent", True, "https://app.example.com/s/1",
        "America/New_York", "k-fields")
    assert event.instance_id == written.resource_id and event.etag == written.etag


def test_all_day_and_updates_replace_what_calgate_wrote(emu, email, provider):
    written = aio.run(provider.put_event(email, draft(
        "k-allday", start=date(2027, 3, 24), end=date(2027, 3, 26), description="x"),
        None, None))
    aio.run(provider.put_event(email, draft("k-allday", summary="Renamed", start=date(
        2027, 3, 24), end=date(2027, 3, 25)), written.resource_id, None))
    stored = emu.event(email, email, written.resource_id)
    assert stored["end"] == {"date": "2027-03-25"} and stored["summary"] == "Renamed"
    assert "description" not in stored  # cleared: the draft has none now


def test_a_lost_insert_answer_is_found_again_and_never_duplicated(emu, email, provider):
    # The insert is applied, its answer lost; httplib2 resends it by itself (a stale
    # connection to it), which meets the deterministic id: 409, then a patch.
    emu.drop_answers(rf"/calendars/{email}/events$", method="POST", times=1)
    written = aio.run(provider.put_event(email, draft("k-lost"), None, None))
    mine = [e for e in emu.events(email) if e.get("extendedProperties")]
    assert [e["id"] for e in mine] == [written.resource_id]
    inserts = [r.status for r in emu.requests if r.api_method == "events.insert"
               and r.user in (None, email)]
    assert inserts == [0, 409]


def test_a_lost_answer_retried_by_the_provider_patches_what_it_made(emu, email, provider):
    # Both the insert and httplib2's own resend lose their answers: the provider retries,
    # and its lookup by the private extended property finds the event.
    emu.drop_answers(rf"/calendars/{email}/events$", method="POST", times=2)
    written = aio.run(provider.put_event(email, draft("k-lost2"), None, None))
    assert [e["id"] for e in emu.events(email)] == [written.resource_id]
    lookups = [r for r in emu.requests if r.api_method == "events.list"
               and r.user == email and "privateExtendedProperty" in r.query]
    assert lookups[-1].query["privateExtendedProperty"] == [f"{MANAGED_KEY}=k-lost2"]
    assert emu.event(email, email, written.resource_id)["summary"] == "Mentoring"


def test_writing_a_deleted_managed_event_again_brings_it_back(emu, email, provider):
    first = aio.run(provider.put_event(email, draft("k-again"), None, None))
    aio.run(provider.delete_event(email, first.resource_id, None))
    again = aio.run(provider.put_event(email, draft("k-again", summary="Back"), None, None))
    assert again.resource_id == first.resource_id
    stored = emu.event(email, email, first.resource_id)
    assert (stored["status"], stored["summary"]) == ("confirmed", "Back")


def test_if_match_with_a_stale_etag_is_a_conflict(emu, email, provider):
    written = aio.run(provider.put_event(email, draft("k-etag"), None, None))
    emu.update_event(email, email, written.resource_id, {"summary": "Changed in Google"})
    with pytest.raises(Conflict):
        aio.run(provider.put_event(email, draft("k-etag", summary="Mine"),
                                   written.resource_id, written.etag))
    with pytest.raises(Conflict):
        aio.run(provider.delete_event(email, written.resource_id, written.etag))
    current = emu.event(email, email, written.resource_id)["etag"]
    aio.run(provider.put_event(email, draft("k-etag", summary="Mine"), written.resource_id,
                               current))
    assert emu.event(email, email, written.resource_id)["summary"] == "Mine"


def test_updating_an_event_gone_upstream_with_an_etag_is_not_found(emu, email, provider):
    with pytest.raises(NotFound):
        aio.run(provider.put_event(email, draft("k-404"), "nosuchevent1", '"1"'))
    written = aio.run(provider.put_event(email, draft("k-404"), "nosuchevent1", None))
    assert emu.event(email, email, written.resource_id)["summary"] == "Mentoring"


def test_attendees_get_invitations_and_events_without_them_none(emu, email, provider):
    emu.mail.clear()
    aio.run(provider.put_event(email, draft("k-inv", attendees=(
        Person("mentee@example.org", "Mentee"),)), None, None))
    aio.run(provider.put_event(email, draft("k-solo"), None, None))
    inserts = [r.query.get("sendUpdates") for r in emu.requests
               if r.api_method == "events.insert" and r.user == email]
    assert inserts == [["all"], ["none"]]
    assert [m["recipients"] for m in emu.mail if m["action"] == "created"] == [
        ["mentee@example.org"]]


def test_conferencing_makes_one_meet_that_the_mirror_sees(emu, email, provider):
    written = aio.run(provider.put_event(email, draft("k-meet", conferencing=True), None,
                                         None))
    stored = emu.event(email, email, written.resource_id)
    link = stored["hangoutLink"]
    assert link.startswith("https://meet.google.com/")
    assert stored["conferenceData"]["entryPoints"][0]["uri"] == link
    aio.run(provider.put_event(email, draft("k-meet", conferencing=True, summary="Moved"),
                               written.resource_id, None))
    assert emu.event(email, email, written.resource_id)["hangoutLink"] == link  # same Meet
    (event,) = aio.run(provider.sync(email, None, WINDOW)).changed[written.resource_id]
    assert event.meeting_url == link
    inserts = [r for r in emu.requests if r.api_method == "events.insert" and r.user == email]
    assert inserts[0].query["conferenceDataVersion"] == ["1"]


def invitation(emu, email, uid="invite1", recurrence=None):
    boss = emu.add_user(new_email("boss"))
    body = {"id": uid, "summary": "Planning", "organizer": {"email": boss},
            "attendees": [{"email": boss}, {"email": email},
                          {"email": "guest@example.org", "responseStatus": "tentative"}],
            **timed(at(10), timedelta(hours=1))}
    if recurrence:
        body.update(start={"dateTime": "2027-03-10T09:00:00", "timeZone": "UTC"},
                    end={"dateTime": "2027-03-10T10:00:00", "timeZone": "UTC"},
                    recurrence=recurrence)
    emu.add_event(email, email, body)
    return boss


def test_participation_answers_only_for_the_account_owner(emu, email, provider):
    invitation(emu, email)
    (event,) = aio.run(provider.sync(email, None, WINDOW)).changed["invite1"]
    assert event.participation_status == "needs_action"
    aio.run(provider.set_participation(email, "invite1", None, "accepted"))
    answers = {a["email"]: a["responseStatus"]
               for a in emu.event(email, email, "invite1")["attendees"]}
    assert answers[email] == "accepted" and answers["guest@example.org"] == "tentative"
    patch = [r for r in emu.requests if r.api_method == "events.patch" and r.user == email][-1]
    assert patch.status == 200
    (event,) = aio.run(provider.sync(email, None, WINDOW)).changed["invite1"]
    assert event.participation_status == "accepted"


def test_participation_on_one_instance_makes_an_exception(emu, email, provider):
    invitation(emu, email, "invite2", ["RRULE:FREQ=DAILY;COUNT=3"])
    aio.run(provider.set_participation(email, "invite2", "invite2_20270311T090000Z",
                                       "declined"))
    instances = {e.instance_id: e for e in
                 aio.run(provider.sync(email, None, WINDOW)).changed["invite2"]}
    assert instances["invite2_20270311T090000Z"].participation_status == "declined"
    assert instances["invite2_20270310T090000Z"].participation_status == "needs_action"


def test_participation_where_not_invited_is_forbidden(emu, email, provider):
    emu.add_event(email, email, {"id": "mine01", **timed(at(4), timedelta(hours=1))})
    with pytest.raises(Forbidden):
        aio.run(provider.set_participation(email, "mine01", None, "accepted"))


def test_free_busy_is_split_into_90_day_queries_and_joined_again(emu, email, provider):
    window = TimeWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 20, tzinfo=UTC))
    boundary = window.start + timedelta(days=90)
    emu.add_event(email, email, {"id": "across", **timed(boundary - timedelta(hours=1),
                                                         timedelta(hours=2))})
    emu.add_event(email, email, {"id": "later1", **timed(datetime(2027, 7, 1, 9, tzinfo=UTC),
                                                         timedelta(hours=1))})
    emu.add_event(email, email, {"id": "freeone", **timed(datetime(2027, 2, 1, 9, tzinfo=UTC),
                                                          timedelta(hours=1), True)})
    start = mark(emu)
    blocks = aio.run(provider.free_busy([email], window))
    queries = [r for r in emu.requests[start:] if r.api_method == "freebusy.query"]
    assert len(queries) == 3 and all(r.status == 200 for r in queries)
    assert [(b.start, b.end) for _, b in blocks] == [
        (boundary - timedelta(hours=1), boundary + timedelta(hours=1)),
        (datetime(2027, 7, 1, 9, tzinfo=UTC), datetime(2027, 7, 1, 10, tzinfo=UTC))]
    with pytest.raises(NotFound):
        aio.run(provider.free_busy([email, "nobody@example.net"], WINDOW))


def test_scopes_narrower_than_needed_are_forbidden(emu, email):
    narrow = open_for(emu, email, (CALENDARLIST_READONLY,))
    try:
        assert aio.run(narrow.list_calendars())
        with pytest.raises(Forbidden):
            aio.run(narrow.sync(email, None, WINDOW))
        with pytest.raises(Forbidden):
            aio.run(narrow.put_event(email, draft("k-narrow"), None, None))
    finally:
        aio.run(narrow.close())
