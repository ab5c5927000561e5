"""The CalDAV adapter's pure parts: iCalendar reading and expansion, event building,
participation answers, free/busy, calendar properties, the sync cursor and presets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from providers.caldav import cursor as cursors
from providers.caldav.client import CollectionProps
from providers.caldav.mapping import (
    MANAGED_KEY,
    build_event,
    calendar_from_props,
    managed_key_of,
    parse_free_busy,
    parse_instance_id,
    parse_resource,
    set_participation,
    uid_of,
)
from providers.caldav.presets import resolve_server_url
from providers.errors import CursorExpired, InvalidInput
from providers.model import ConferenceLink, EventDraft, Person, SyncCursor, TimeWindow
from tests.contract.harness import SERIES_EXPECTED_STARTS, WINDOW
from tests.support.davservers import vcalendar, weekly_series

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2026, 11, 1, 12, tzinfo=UTC)


def vevent(*lines: str, uid: str = "ev-1") -> str:
    body = "\n".join(lines)
    return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n{body}\nEND:VEVENT\n"


def parse(text: str, window: TimeWindow = WINDOW, **kwargs):
    resource = parse_resource(text, window, **kwargs)
    assert resource is not None
    return resource


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- reading and expansion -------------------------------------------------------------


def test_weekly_series_across_dst_with_exdate_and_moved_instance():
    resource = parse(weekly_series("series-1"))
    assert resource.uid == "series-1"
    assert [e.start for e in resource.events] == list(SERIES_EXPECTED_STARTS)
    assert all(e.end - e.start == timedelta(hours=1) for e in resource.events)
    assert all(e.recurring and e.start_tzid == "Europe/Berlin" for e in resource.events)


def test_instance_ids_name_the_original_start_even_for_a_moved_instance():
    events = parse(weekly_series("s")).events
    moved = next(e for e in events if e.start == utc(2027, 3, 22, 13))
    assert moved.instance_id == "s@2027-03-22T08:00:00+00:00"
    assert len({e.instance_id for e in events}) == len(events)
    assert parse_instance_id("s", moved.instance_id) == utc(2027, 3, 22, 8)


def test_override_properties_win_for_their_instance():
    text = weekly_series("s").replace(
        "DTSTART;TZID=Europe/Berlin:20270322T140000\n",
        "DTSTART;TZID=Europe/Berlin:20270322T140000\nLOCATION:Elsewhere\nSTATUS:CANCELLED\n")
    events = parse(text).events
    moved = next(e for e in events if e.start == utc(2027, 3, 22, 13))
    assert (moved.location, moved.status) == ("Elsewhere", "cancelled")
    assert {e.status for e in events if e is not moved} == {"confirmed"}


def test_count_and_until_end_a_series():
    by_count = parse(vcalendar(vevent("DTSTART:20270301T090000Z", "DURATION:PT30M",
                                      "RRULE:FREQ=DAILY;COUNT=3"), timezone=False))
    assert [e.start for e in by_count.events] == [utc(2027, 3, d, 9) for d in (1, 2, 3)]
    by_until = parse(vcalendar(vevent(
        "DTSTART;TZID=Europe/Berlin:20270322T090000",
        "DTEND;TZID=Europe/Berlin:20270322T100000",
        "RRULE:FREQ=WEEKLY;UNTIL=20270405T070000Z")))
    assert [e.start for e in by_until.events] == [utc(2027, 3, 22, 8), utc(2027, 3, 29, 7),
                                                 utc(2027, 4, 5, 7)]


def test_only_instances_inside_the_window_are_kept():
    text = vcalendar(vevent("DTSTART:20270301T090000Z", "DTEND:20270301T100000Z",
                            "RRULE:FREQ=DAILY;COUNT=10"), timezone=False)
    window = TimeWindow(utc(2027, 3, 3, 9, 30), utc(2027, 3, 5, 9))
    assert [e.start for e in parse(text, window).events] == [utc(2027, 3, 3, 9),
                                                            utc(2027, 3, 4, 9)]


def test_a_single_event_is_its_own_instance():
    (event,) = parse(vcalendar(vevent("DTSTART:20270310T090000Z", "DTEND:20270310T100000Z"),
                               timezone=False)).events
    assert event.instance_id == event.resource_id == "ev-1"
    assert not event.recurring
    assert (event.start, event.end, event.start_tzid) == (utc(2027, 3, 10, 9),
                                                         utc(2027, 3, 10, 10), "Etc/UTC")


def test_all_day_events_are_dates_with_an_exclusive_end():
    one_day = parse(vcalendar(vevent("DTSTART;VALUE=DATE:20270324"), timezone=False))
    (event,) = one_day.events
    assert (event.start, event.end, event.all_day) == (date(2027, 3, 24), date(2027, 3, 25), True)
    assert event.start_tzid is None
    two_days = parse(vcalendar(vevent("DTSTART;VALUE=DATE:20270324",
                                      "DTEND;VALUE=DATE:20270326"), timezone=False))
    assert two_days.events[0].end == date(2027, 3, 26)


def test_floating_times_are_read_in_the_calendar_zone_else_utc():
    text = vcalendar(vevent("DTSTART:20270310T090000", "DURATION:PT1H"), timezone=False)
    (in_berlin,) = parse(text, zone=BERLIN).events
    assert in_berlin.start == utc(2027, 3, 10, 8)
    assert in_berlin.start_tzid == "Europe/Berlin"
    (as_utc,) = parse(text).events
    assert as_utc.start == utc(2027, 3, 10, 9)


def test_a_dtstart_with_a_zone_needs_no_calendar_zone():
    text = vcalendar(vevent("DTSTART;TZID=Europe/Berlin:20270401T090000",
                            "DTEND;TZID=Europe/Berlin:20270401T093000"))
    (event,) = parse(text, zone=ZoneInfo("America/New_York")).events
    assert (event.start, event.end) == (utc(2027, 4, 1, 7), utc(2027, 4, 1, 7, 30))


def test_attendees_organizer_and_the_owners_participation():
    text = vcalendar(vevent(
        "DTSTART:20270310T090000Z", "DTEND:20270310T100000Z",
        "ORGANIZER;CN=Alice:mailto:alice@example.test",
        "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.test",
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:Me@Example.test",
        "ATTENDEE:mailto:carol@example.test",
        "ATTENDEE;PARTSTAT=DELEGATED:mailto:dave@example.test"), timezone=False)
    (event,) = parse(text, owner=frozenset({"me@example.test"})).events
    assert event.attendees == (
        Person("bob@example.test", "Bob", "accepted"),
        Person("Me@Example.test", None, "tentative"),
        Person("carol@example.test", None, "needs_action"),
        Person("dave@example.test", None, "unknown"))
    assert event.organizer == Person("alice@example.test", "Alice", "unknown")
    assert event.participation_status == "tentative"
    (as_organizer,) = parse(text, owner=frozenset({"alice@example.test"})).events
    assert as_organizer.participation_status == "accepted"
    (stranger,) = parse(text, owner=frozenset({"x@example.test"})).events
    assert stranger.participation_status == "unknown"


@pytest.mark.parametrize(("klass", "private"), [("PRIVATE", True), ("CONFIDENTIAL", True),
                                                 ("PUBLIC", False)])
def test_class_private_and_confidential_are_private(klass, private):
    text = vcalendar(vevent("DTSTART:20270310T090000Z", f"CLASS:{klass}"), timezone=False)
    assert parse(text).events[0].private is private


def test_text_fields_transparency_status_categories_and_url():
    text = vcalendar(vevent(
        "DTSTART:20270310T090000Z", "DTEND:20270310T100000Z", "SUMMARY:Plan\\, review",
        "DESCRIPTION:Line one\\nLine two", "LOCATION:Room 4", "TRANSP:TRANSPARENT",
        "STATUS:TENTATIVE", "CATEGORIES:Work,Review", "CATEGORIES:Later",
        "URL:https://example.test/x", "LAST-MODIFIED:20260105T100000Z"), timezone=False)
    (event,) = parse(text, etag='"e1"').events
    assert (event.summary, event.description, event.location) == (
        "Plan, review", "Line one\nLine two", "Room 4")
    assert (event.transparency, event.status) == ("transparent", "tentative")
    assert event.categories == ("Work", "Review", "Later")
    assert event.url == "https://example.test/x"
    assert event.upstream_updated == utc(2026, 1, 5, 10)
    assert event.etag == '"e1"'
    assert event.managed_key is None


def test_an_object_without_events_is_not_a_resource():
    todo = "BEGIN:VTODO\nUID:t1\nDTSTAMP:20260101T000000Z\nSUMMARY:Buy milk\nEND:VTODO\n"
    assert parse_resource(vcalendar(todo, timezone=False), WINDOW) is None


def test_unparsable_data_raises_value_error():
    with pytest.raises(ValueError):
        parse_resource("this is not iCalendar", WINDOW)


# -- building managed events ------------------------------------------------------------


def draft(**changes) -> EventDraft:
    values = dict(managed_key="app:k;1,2", summary="Mentoring, session",
                  start=utc(2027, 3, 20, 14), end=utc(2027, 3, 20, 15),
                  start_tzid="Europe/Berlin", end_tzid="Europe/Berlin",
                  description="Bring questions", location="Room 4",
                  attendees=(Person("bob@example.test", "Bob"),),
                  url="https://app.example/e/1", private=True, reminders_minutes=(10, 60))
    values.update(changes)
    return EventDraft(**values)


def test_built_event_round_trips_through_the_reader():
    text = build_event(draft(), uid="calgate-1", stamp=STAMP, organizer="me@example.test")
    (event,) = parse(text, owner=frozenset({"me@example.test"})).events
    assert (event.resource_id, event.managed_key) == ("calgate-1", "app:k;1,2")
    assert (event.summary, event.description, event.location) == (
        "Mentoring, session", "Bring questions", "Room 4")
    assert (event.start, event.end) == (utc(2027, 3, 20, 14), utc(2027, 3, 20, 15))
    assert (event.start_tzid, event.end_tzid) == ("Europe/Berlin", "Europe/Berlin")
    assert event.attendees == (Person("bob@example.test", "Bob", "needs_action"),)
    assert event.organizer is not None and event.organizer.email == "me@example.test"
    assert (event.private, event.url, event.transparency) == (True, "https://app.example/e/1",
                                                              "opaque")
    assert managed_key_of(text) == "app:k;1,2" and uid_of(text) == "calgate-1"


def test_built_event_writes_local_times_a_vtimezone_alarms_and_the_key():
    text = build_event(draft(), uid="calgate-1", stamp=STAMP, sequence=3,
                       organizer="me@example.test")
    assert "DTSTART;TZID=Europe/Berlin:20270320T150000" in text
    calendar = icalendar.Calendar.from_ical(text)
    (tz,) = calendar.walk("VTIMEZONE")
    assert tz["TZID"] == "Europe/Berlin"
    (event,) = calendar.walk("VEVENT")
    assert event["SEQUENCE"] == 3 and event["CLASS"] == "PRIVATE"
    assert str(event[MANAGED_KEY]) == "app:k;1,2"
    assert sorted(a["TRIGGER"].dt for a in event.walk("VALARM")) == [
        timedelta(minutes=-60), timedelta(minutes=-10)]


def test_built_utc_event_uses_utc_times_and_no_vtimezone():
    text = build_event(draft(start_tzid="Etc/UTC", end_tzid="UTC", attendees=()),
                       uid="u", stamp=STAMP, organizer="me@example.test")
    assert "DTSTART:20270320T140000Z" in text and "VTIMEZONE" not in text
    assert "ORGANIZER" not in text  # nobody to invite


def test_built_all_day_event_uses_dates():
    text = build_event(draft(start=date(2027, 3, 24), end=date(2027, 3, 26)), uid="u",
                       stamp=STAMP)
    assert "DTSTART;VALUE=DATE:20270324" in text and "DTEND;VALUE=DATE:20270326" in text
    (event,) = parse(text).events
    assert (event.start, event.end) == (date(2027, 3, 24), date(2027, 3, 26))


def test_transparent_draft_is_transp_transparent():
    text = build_event(draft(transparency="transparent"), uid="u", stamp=STAMP)
    assert parse(text).events[0].transparency == "transparent"


@pytest.mark.parametrize("changes", [
    dict(start_tzid="Mars/Olympus_Mons"),
    dict(end=utc(2027, 3, 20, 13)),
    dict(start=date(2027, 3, 20)),
    dict(start=datetime(2027, 3, 20, 14), end=datetime(2027, 3, 20, 15)),
])
def test_bad_drafts_are_invalid_input(changes):
    with pytest.raises(InvalidInput):
        build_event(draft(**changes), uid="u", stamp=STAMP)


# -- answering invitations --------------------------------------------------------------


INVITE = vcalendar(vevent(
    "DTSTART;TZID=Europe/Berlin:20270301T090000", "DTEND;TZID=Europe/Berlin:20270301T100000",
    "RRULE:FREQ=WEEKLY;COUNT=4", "ORGANIZER:mailto:boss@example.test",
    "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:me@example.test",
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test", uid="inv"))
ME = frozenset({"me@example.test"})


def test_answering_the_whole_series():
    text = set_participation(INVITE, owner=ME, status="accepted", original=None)
    events = parse(text, owner=ME).events
    assert [e.participation_status for e in events] == ["accepted"] * 4
    assert {a.status for e in events for a in e.attendees} == {"accepted"}


def test_answering_one_instance_adds_an_override():
    original = parse_instance_id("inv", "inv@2027-03-15T08:00:00+00:00")
    text = set_participation(INVITE, owner=ME, status="declined", original=original)
    events = parse(text, owner=ME).events
    assert [(e.start, e.participation_status) for e in events] == [
        (utc(2027, 3, 1, 8), "needs_action"), (utc(2027, 3, 8, 8), "needs_action"),
        (utc(2027, 3, 15, 8), "declined"), (utc(2027, 3, 22, 8), "needs_action")]
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20270315T090000" in text
    again = set_participation(text, owner=ME, status="tentative", original=original)
    assert again.count("RECURRENCE-ID") == 1  # the override is reused


def test_answering_when_not_invited_is_refused():
    with pytest.raises(InvalidInput):
        set_participation(INVITE, owner=frozenset({"x@example.test"}), status="accepted",
                          original=None)
    with pytest.raises(InvalidInput):
        set_participation(INVITE, owner=ME, status="unknown", original=None)


def test_instance_ids_are_parsed_even_when_the_uid_has_an_at_sign():
    assert parse_instance_id("a@b.c", "a@b.c") is None
    assert parse_instance_id("a@b.c", None) is None
    assert parse_instance_id("a@b.c", "a@b.c@2027-03-01") == date(2027, 3, 1)
    with pytest.raises(InvalidInput):
        parse_instance_id("a@b.c", "other@2027-03-01")


# -- free/busy and calendars ------------------------------------------------------------


def test_free_busy_periods_and_types():
    text = vcalendar("BEGIN:VFREEBUSY\nDTSTART:20270315T000000Z\nDTEND:20270316T000000Z\n"
                     "FREEBUSY:20270315T090000Z/20270315T100000Z,20270315T110000Z/PT30M\n"
                     "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20270315T130000Z/20270315T140000Z\n"
                     "FREEBUSY;FBTYPE=FREE:20270315T150000Z/20270315T160000Z\n"
                     "FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20270315T170000Z/PT1H\n"
                     "END:VFREEBUSY\n", timezone=False)
    assert [(b.start, b.end, b.status) for b in parse_free_busy(text)] == [
        (utc(2027, 3, 15, 9), utc(2027, 3, 15, 10), "busy"),
        (utc(2027, 3, 15, 11), utc(2027, 3, 15, 11, 30), "busy"),
        (utc(2027, 3, 15, 13), utc(2027, 3, 15, 14), "tentative"),
        (utc(2027, 3, 15, 17), utc(2027, 3, 15, 18), "busy")]


def test_calendar_from_properties():
    props = CollectionProps(
        path="/alice/work/", is_calendar=True, name="Work", color="#FF2968FF",
        timezone=vcalendar(),  # a VCALENDAR holding the Europe/Berlin VTIMEZONE
        privileges=frozenset({"{DAV:}read", "{urn:ietf:params:xml:ns:caldav}read-free-busy"}))
    calendar = calendar_from_props(props, primary=True)
    assert (calendar.calendar_id, calendar.name, calendar.color) == ("/alice/work/", "Work",
                                                                     "#FF2968")
    assert (calendar.readonly, calendar.primary, calendar.tzid) == (True, True, "Europe/Berlin")
    writable = CollectionProps(path="/a/b/", is_calendar=True,
                               privileges=frozenset({"{DAV:}read", "{DAV:}write-content"}))
    assert not calendar_from_props(writable, primary=False).readonly
    unknown = CollectionProps(path="/a/c/", is_calendar=True, timezone_id="Asia/Tokyo")
    assert calendar_from_props(unknown, primary=False).readonly is False
    assert calendar_from_props(unknown, primary=False).name == "c"
    assert calendar_from_props(unknown, primary=False).tzid == "Asia/Tokyo"


# -- the sync cursor and presets ---------------------------------------------------------


def test_cursor_round_trips_with_member_paths_relative_to_the_calendar():
    token = cursors.TokenState("tok-1", {"/cal/a.ics": "uid-a", "/elsewhere/b.ics": "uid-b"})
    encoded = cursors.encode(token, "/cal/")
    assert '"a.ics"' in encoded.value and " " not in encoded.value
    assert cursors.decode(encoded, "/cal/") == token
    ctag = cursors.CtagState("c1", {"/cal/a.ics": ('"e1"', "uid-a"), "/cal/n.ics": (None, "n")})
    assert cursors.decode(cursors.encode(ctag, "/cal"), "/cal") == ctag


@pytest.mark.parametrize("value", ["not-a-real-cursor", "{}", '{"v":1,"k":"x"}', "[1]",
                                   '{"v":2,"k":"t","t":"x","u":{}}', '{"v":1,"k":"c","m":1}'])
def test_foreign_cursors_expire(value):
    with pytest.raises(CursorExpired):
        cursors.decode(SyncCursor(value), "/cal/")


@pytest.mark.parametrize(("server_url", "preset", "username", "expected"), [
    ("", "icloud", "me@icloud.com", "https://caldav.icloud.com"),
    ("", "fastmail", "me@fastmail.com", "https://caldav.fastmail.com/dav/"),
    ("https://cloud.example/", "nextcloud", "me", "https://cloud.example/remote.php/dav"),
    ("https://cloud.example/remote.php/dav", "nextcloud", "me",
     "https://cloud.example/remote.php/dav"),
    ("https://dav.example/cal/", "", "me", "https://dav.example/cal/"),
    ("", "", "me@example.org", "example.org"),  # RFC 6764 discovery on the mail domain
])
def test_presets(server_url, preset, username, expected):
    assert resolve_server_url(server_url, preset, username) == expected


@pytest.mark.parametrize(("server_url", "preset"), [("", ""), ("", "nextcloud"), ("", "nope")])
def test_presets_refuse_what_they_cannot_resolve(server_url, preset):
    with pytest.raises(InvalidInput):
        resolve_server_url(server_url, preset, "me")


def test_patch_object_changes_only_what_the_patch_names_and_refuses_a_series():
    from datetime import UTC, datetime

    import pytest

    from providers.caldav.mapping import patch_object
    from providers.errors import InvalidInput
    from providers.model import EventPatch

    stored = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Owner//EN\r\nBEGIN:VEVENT\r\n"
              "UID:own-1\r\nDTSTAMP:20270101T000000Z\r\nSEQUENCE:2\r\n"
              "DTSTART:20270310T090000Z\r\nDTEND:20270310T100000Z\r\nSUMMARY:Standup\r\n"
              "DESCRIPTION:Owner's notes\r\nATTENDEE;CN=Bo:mailto:bo@example.com\r\n"
              "X-OWNER-THING:kept\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    stamp = datetime(2027, 3, 1, tzinfo=UTC)
    patched = patch_object(stored, EventPatch(summary="Renamed", location="Room 2"),
                           stamp=stamp)
    assert "SUMMARY:Renamed" in patched and "LOCATION:Room 2" in patched
    assert "DESCRIPTION:Owner's notes" in patched and "X-OWNER-THING:kept" in patched
    assert "mailto:bo@example.com" in patched and "SEQUENCE:3" in patched
    assert "DTSTART:20270310T090000Z" in patched and "SUMMARY:Standup" not in patched
    cleared = patch_object(stored, EventPatch(description=""), stamp=stamp)
    assert "DESCRIPTION" not in cleared
    series = stored.replace("SUMMARY:Standup", "RRULE:FREQ=WEEKLY\r\nSUMMARY:Standup")
    with pytest.raises(InvalidInput):
        patch_object(series, EventPatch(summary="No"), stamp=stamp)


ZOOM = ConferenceLink("https://zoom.example/j/123?pwd=a,b;c", "Zoom, by Videotech")


def test_an_explicit_conference_link_is_a_conference_and_the_empty_location():
    text = build_event(draft(location="", conference_link=ZOOM), uid="calgate-1", stamp=STAMP)
    (component,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    conference = component["CONFERENCE"]
    assert str(conference) == ZOOM.join_url  # a URI value: commas and semicolons as they are
    assert (conference.params["VALUE"], conference.params["FEATURE"],
            conference.params["LABEL"]) == ("URI", "VIDEO", "Zoom, by Videotech")
    assert str(component["LOCATION"]) == ZOOM.join_url
    (event,) = parse(text).events
    assert (event.meeting_url, event.conference_name, event.location) == (
        ZOOM.join_url, "Zoom, by Videotech", ZOOM.join_url)


def test_the_apps_location_stays_beside_a_conference_link():
    text = build_event(draft(conference_link=ZOOM), uid="calgate-1", stamp=STAMP)
    (event,) = parse(text).events
    assert (event.location, event.meeting_url) == ("Room 4", ZOOM.join_url)
    plain = build_event(draft(), uid="calgate-1", stamp=STAMP)
    assert "CONFERENCE" not in plain
    (event,) = parse(plain).events
    assert (event.meeting_url, event.conference_name) == (None, None)


def test_a_video_conference_wins_over_other_conference_entries():
    text = vcalendar("\n".join((
        "BEGIN:VEVENT", "UID:conf-1", "DTSTART:20270320T140000Z", "DTEND:20270320T150000Z",
        "SUMMARY:Call", "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+1-555-0100",
        "CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO:https://meet.example/abc",
        "END:VEVENT", "")))
    (event,) = parse(text).events
    assert (event.meeting_url, event.conference_name) == ("https://meet.example/abc", None)
