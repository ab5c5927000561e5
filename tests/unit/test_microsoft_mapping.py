"""Pure parts of the Microsoft provider: Graph events, calendars and schedules to the model,
time zones through CLDR, recurring series in calendarView/delta, and drafts to Graph's
create and PATCH bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from providers.errors import InvalidInput, Unavailable
from providers.microsoft import drafts, mapping, times
from providers.model import ConferenceLink, EventDraft, FreeBusyBlock, Person, TimeWindow

WINDOW = TimeWindow(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
MASTER = "AAMkMaster=="


def graph_event(**fields):
    base = {"id": "AAMkSingle==", "@odata.etag": 'W/"DwAAABYAAAA"', "type": "singleInstance",
            "subject": "Standup", "isAllDay": False, "showAs": "busy",
            "lastModifiedDateTime": "2027-01-02T03:04:05.6789012Z",
            "start": {"dateTime": "2027-03-10T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-10T09:30:00.0000000", "timeZone": "UTC"},
            "originalStartTimeZone": "W. Europe Standard Time",
            "originalEndTimeZone": "W. Europe Standard Time"}
    return {**base, **fields}


def occurrence(day, subject="Weekly", kind="occurrence", **fields):
    start = datetime(2027, 3, day, 14, 0)
    return graph_event(
        id=f"AAMkOcc{day:02d}==", type=kind, seriesMasterId=MASTER, subject=subject,
        start={"dateTime": start.isoformat() + ".0000000", "timeZone": "UTC"},
        end={"dateTime": (start + timedelta(hours=1)).isoformat() + ".0000000",
             "timeZone": "UTC"}, **fields)


# -- times and zones ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "iana"), [
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("UTC", "Etc/UTC"),
    ("tzone://Microsoft/Utc", "Etc/UTC"),
    ("Europe/Paris", "Europe/Paris"),  # Graph also passes IANA names through
    ("tzone://Microsoft/Custom", None),
    ("Not A Zone", None),
    ("", None),
])
def test_windows_and_iana_names_map_to_iana(name, iana):
    assert times.iana_zone(name) == iana


def test_the_windows_table_is_cldr_not_ours():
    from icalendar.timezone import windows_to_olson
    assert len(windows_to_olson.WINDOWS_TO_OLSON) > 130  # CLDR lists ~140 Windows zones
    assert times.iana_zone("India Standard Time") == "Asia/Calcutta" or \
        times.iana_zone("India Standard Time") == "Asia/Kolkata"


def test_seven_fraction_digits_and_a_zone_label_read_as_utc():
    when = times.read_when({"dateTime": "2027-03-10T09:00:00.1234567",
                            "timeZone": "Pacific Standard Time"}, all_day=False)
    assert when == datetime(2027, 3, 10, 17, 0, 0, 123456, tzinfo=UTC)


def test_all_day_values_keep_their_day_whatever_the_label():
    value = {"dateTime": "2027-03-10T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    assert times.read_when(value, all_day=True) == date(2027, 3, 10)


def test_a_value_without_a_time_is_refused():
    with pytest.raises(InvalidInput):
        times.read_when({"timeZone": "UTC"}, all_day=False)
    with pytest.raises(InvalidInput):
        times.read_when({"dateTime": "yesterday", "timeZone": "UTC"}, all_day=False)


def test_written_times_are_local_to_the_clients_zone():
    value = datetime(2027, 7, 1, 8, 0, tzinfo=UTC)
    assert times.write_when(value, "Europe/Berlin") == {"dateTime": "2027-07-01T10:00:00",
                                                       "timeZone": "Europe/Berlin"}
    assert times.write_when(value, "Etc/UTC") == {"dateTime": "2027-07-01T08:00:00",
                                                 "timeZone": "UTC"}
    assert times.write_when(date(2027, 7, 1), "Etc/UTC")["dateTime"] == "2027-07-01T00:00:00"
    with pytest.raises(InvalidInput):
        times.write_when(datetime(2027, 7, 1, 8, 0), "Etc/UTC")  # naive
    with pytest.raises(InvalidInput):
        times.write_when(value, "Mars/Olympus")


def test_chunks_cover_the_window_without_gaps():
    pieces = times.chunks(TimeWindow(WINDOW.start, WINDOW.start + timedelta(days=130)),
                          timedelta(days=62))
    assert [p.end - p.start for p in pieces] == [timedelta(days=62)] * 2 + [timedelta(days=6)]
    assert all(a.end == b.start for a, b in pairwise(pieces))


# -- events -------------------------------------------------------------------------------

def test_a_single_event_maps_every_field():
    event = mapping.event_from_graph(graph_event(
        body={"contentType": "text", "content": "Notes"},
        location={"displayName": "Room 1"}, sensitivity="private", categories=["Blue"],
        webLink="https://outlook.example/e", isOrganizer=False,
        responseStatus={"response": "tentativelyAccepted"},
        organizer={"emailAddress": {"name": "Boss", "address": "Boss@Example.com"}},
        attendees=[{"emailAddress": {"name": "Ann", "address": "Ann@Example.com"},
                    "status": {"response": "accepted"}, "type": "required"},
                   {"emailAddress": {"address": "bob@example.com"},
                    "status": {"response": "none"}, "type": "optional"},
                   {"emailAddress": {"name": "nobody"}}]))
    assert event.resource_id == event.instance_id == "AAMkSingle=="
    assert event.start == datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
    assert event.end == datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
    assert (event.start_tzid, event.end_tzid) == ("Europe/Berlin", "Europe/Berlin")
    assert (event.summary, event.description, event.location) == ("Standup", "Notes", "Room 1")
    assert event.private and event.categories == ("Blue",)
    assert event.participation_status == "tentative"
    assert event.attendees == (Person("ann@example.com", "Ann", "accepted"),
                               Person("bob@example.com", None, "needs_action"))
    assert event.organizer == Person("boss@example.com", "Boss", "accepted")
    assert event.etag == 'W/"DwAAABYAAAA"' and not event.recurring
    assert event.upstream_updated == datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert event.status == "confirmed" and event.meeting_url is None


@pytest.mark.parametrize(("response", "organizer", "expected"), [
    ("accepted", False, "accepted"), ("declined", False, "declined"),
    ("tentativelyAccepted", False, "tentative"), ("notResponded", False, "needs_action"),
    ("none", False, "needs_action"), ("organizer", False, "accepted"),
    ("none", True, "accepted")])
def test_participation_status_follows_the_response(response, organizer, expected):
    item = graph_event(responseStatus={"response": response}, isOrganizer=organizer)
    assert mapping.event_from_graph(item).participation_status == expected


@pytest.mark.parametrize(("show_as", "transparency", "block"), [
    ("free", "transparent", None), ("workingElsewhere", "transparent", None),
    ("tentative", "opaque", "tentative"), ("busy", "opaque", "busy"),
    ("oof", "opaque", "busy"), ("unknown", "unknown", "unknown")])
def test_show_as_gives_transparency_and_free_busy(show_as, transparency, block):
    item = graph_event(showAs=show_as)
    assert mapping.event_from_graph(item).transparency == transparency
    blocks = mapping.busy_from_view([item])
    assert [b.status for b in blocks] == ([block] if block else [])


def test_all_day_events_are_dates_without_a_zone():
    event = mapping.event_from_graph(graph_event(
        isAllDay=True, originalStartTimeZone="Tokyo Standard Time",
        start={"dateTime": "2027-03-10T00:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2027-03-12T00:00:00.0000000", "timeZone": "UTC"}))
    assert (event.start, event.end) == (date(2027, 3, 10), date(2027, 3, 12))
    assert event.all_day and event.start_tzid is None


def test_a_teams_meeting_gives_its_join_url():
    item = graph_event(isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness",
                       onlineMeeting={"joinUrl": "https://teams.microsoft.com/l/meetup-join/x"})
    assert mapping.meeting_url(item) == "https://teams.microsoft.com/l/meetup-join/x"
    assert mapping.event_from_graph(item).meeting_url.startswith("https://teams")
    assert mapping.meeting_url(graph_event(isOnlineMeeting=False)) is None


def test_locations_fall_back_to_the_list():
    item = graph_event(location={"displayName": ""},
                       locations=[{"displayName": "A"}, {"displayName": "B"}])
    assert mapping.event_from_graph(item).location == "A; B"


def test_the_managed_key_is_read_from_the_extended_property_whatever_the_case():
    item = graph_event(singleValueExtendedProperties=[
        {"id": "String {00000000-0000-0000-0000-000000000000} Name other", "value": "no"},
        {"id": mapping.MANAGED_PROPERTY.upper(), "value": "client-key-1"}])
    assert mapping.event_from_graph(item).managed_key == "client-key-1"
    assert mapping.event_from_graph(graph_event()).managed_key is None


def test_the_managed_key_is_read_back_from_the_transaction_id_delta_carries():
    key = "cg1.acct-1.0123456789abcdef0123456789abcdef"
    item = graph_event(transactionId=mapping.transaction_id(key))
    assert mapping.event_from_graph(item).managed_key == key
    odd = "app/ü 'quoted'?"  # any key survives the round trip
    assert mapping.key_of_transaction(mapping.transaction_id(odd)) == odd


def test_another_apps_transaction_id_is_not_a_managed_key():
    for other in (None, "", "7E163156-7762-4BEB-A1C6-729EA81755A7", "calgate1.",
                  "calgate1.%%%", "calgate1.gA"):  # the last: not UTF-8
        item = graph_event(transactionId=other)
        assert mapping.event_from_graph(item).managed_key is None, other


def test_the_property_id_has_the_documented_named_form():
    kind, guid, name_word, name = mapping.MANAGED_PROPERTY.split(" ")
    assert (kind, name_word, name) == ("String", "Name", "calgateEventId")
    assert guid.startswith("{") and guid.endswith("}") and len(guid) == 38
    assert mapping.MANAGED_PROPERTY in mapping.EXPAND_MANAGED


# -- recurring series in calendarView/delta -------------------------------------------------

def test_a_weekly_series_with_a_moved_and_a_cancelled_occurrence():
    moved = occurrence(10, kind="exception")
    moved["start"] = {"dateTime": "2027-03-11T16:00:00.0000000", "timeZone": "UTC"}
    moved["end"] = {"dateTime": "2027-03-11T17:00:00.0000000", "timeZone": "UTC"}
    items = [occurrence(3), moved, {"id": "AAMkOcc17==", "@removed": {"reason": "deleted"}},
             occurrence(24), occurrence(31, isCancelled=True), graph_event()]
    sorted_ = mapping.sort_delta(items, WINDOW)
    series = sorted_.events[MASTER]
    assert [e.instance_id for e in series] == ["AAMkOcc03==", "AAMkOcc10==", "AAMkOcc24=="]
    assert all(e.recurring and e.resource_id == MASTER for e in series)
    assert series[1].start == datetime(2027, 3, 11, 16, 0, tzinfo=UTC)
    assert sorted_.gone == {"AAMkOcc17==", "AAMkOcc31=="}
    assert sorted_.series == {MASTER}
    assert [e.instance_id for e in sorted_.events["AAMkSingle=="]] == ["AAMkSingle=="]


def test_renaming_the_series_shows_on_every_occurrence_but_not_the_exception():
    first = [occurrence(3), occurrence(10, subject="Moved", kind="exception"), occurrence(24)]
    renamed = [occurrence(3, subject="Weekly sync"), occurrence(24, subject="Weekly sync"),
               {**first[0], "type": "seriesMaster", "id": MASTER, "subject": "Weekly sync"}]
    sorted_ = mapping.sort_delta(first + renamed, WINDOW)
    subjects = {e.instance_id: e.summary for e in sorted_.events[MASTER]}
    assert subjects == {"AAMkOcc03==": "Weekly sync", "AAMkOcc10==": "Moved",
                        "AAMkOcc24==": "Weekly sync"}
    assert MASTER not in {e.instance_id for e in sorted_.events[MASTER]}


def test_items_outside_the_window_are_dropped_but_their_series_is_noted():
    outside = occurrence(3)
    outside["start"] = {"dateTime": "2027-05-01T10:00:00", "timeZone": "UTC"}
    outside["end"] = {"dateTime": "2027-05-01T11:00:00", "timeZone": "UTC"}
    sorted_ = mapping.sort_delta([outside], WINDOW)
    assert sorted_.events == {} and sorted_.series == {MASTER}


def test_the_last_version_of_an_item_in_a_round_wins():
    sorted_ = mapping.sort_delta([graph_event(subject="old"), graph_event(subject="new")],
                                 WINDOW)
    assert [e.summary for e in sorted_.events["AAMkSingle=="]] == ["new"]
    gone = mapping.sort_delta([graph_event(), {"id": "AAMkSingle==", "@removed": {}}], WINDOW)
    assert gone.events == {} and gone.gone == {"AAMkSingle=="}


# -- calendars and free/busy --------------------------------------------------------------

def test_a_calendar_maps_can_edit_colour_default_and_owner():
    entry = {"id": "AAMkCal==", "name": "Work", "canEdit": False, "isDefaultCalendar": True,
             "hexColor": "#FF8C00", "color": "lightOrange",
             "owner": {"name": "Ann", "address": "Ann@Contoso.com"},
             "allowedOnlineMeetingProviders": ["teamsForBusiness"]}
    calendar = mapping.calendar_from_graph(entry)
    assert (calendar.calendar_id, calendar.name) == ("AAMkCal==", "Work")
    assert calendar.readonly and calendar.primary and calendar.color == "#ff8c00"
    assert mapping.calendar_owner(entry) == "ann@contoso.com"
    assert mapping.teams_allowed(entry)
    plain = mapping.calendar_from_graph({"id": "c2", "name": "Mine", "canEdit": True,
                                         "hexColor": "", "allowedOnlineMeetingProviders": []})
    assert not plain.readonly and not plain.primary and plain.color is None
    assert not mapping.teams_allowed({"id": "c3", "allowedOnlineMeetingProviders": ["unknown"]})


def test_schedule_items_become_blocks_and_free_time_is_left_out():
    info = {"scheduleId": "ann@contoso.com", "availabilityView": "0220",
            "scheduleItems": [
                {"status": "busy", "start": {"dateTime": "2027-03-10T09:00:00.0000000",
                                             "timeZone": "UTC"},
                 "end": {"dateTime": "2027-03-10T10:00:00.0000000", "timeZone": "UTC"}},
                {"status": "free", "start": {"dateTime": "2027-03-10T11:00:00",
                                             "timeZone": "UTC"},
                 "end": {"dateTime": "2027-03-10T12:00:00", "timeZone": "UTC"}},
                {"status": "oof", "start": {"dateTime": "2027-03-11T00:00:00",
                                            "timeZone": "UTC"},
                 "end": {"dateTime": "2027-03-12T00:00:00", "timeZone": "UTC"}},
                {"status": "tentative", "start": {"dateTime": "2027-03-10T13:00:00",
                                                  "timeZone": "W. Europe Standard Time"},
                 "end": {"dateTime": "2027-03-10T14:00:00",
                         "timeZone": "W. Europe Standard Time"}}]}
    assert mapping.busy_from_schedule(info) == [
        FreeBusyBlock(datetime(2027, 3, 10, 9, tzinfo=UTC),
                      datetime(2027, 3, 10, 10, tzinfo=UTC), "busy"),
        FreeBusyBlock(datetime(2027, 3, 11, tzinfo=UTC), datetime(2027, 3, 12, tzinfo=UTC),
                      "busy"),
        FreeBusyBlock(datetime(2027, 3, 10, 12, tzinfo=UTC),
                      datetime(2027, 3, 10, 13, tzinfo=UTC), "tentative")]


def test_a_schedule_error_raises():
    with pytest.raises(Unavailable, match="ErrorMailRecipientNotFound"):
        mapping.busy_from_schedule({"scheduleId": "x@y", "error": {
            "message": "no mailbox", "responseCode": "ErrorMailRecipientNotFound"}})


def test_cancelled_and_removed_items_leave_the_time_free():
    items = [graph_event(isCancelled=True), {"id": "gone", "@removed": {"reason": "deleted"}},
             {**graph_event(), "type": "seriesMaster"}, graph_event(id="live")]
    assert len(mapping.busy_from_view(items)) == 1


# -- drafts to Graph ----------------------------------------------------------------------

def make_draft(**fields):
    base = {"managed_key": "app1/ev-1", "summary": "Interview",
            "start": datetime(2027, 3, 10, 9, tzinfo=UTC),
            "end": datetime(2027, 3, 10, 10, tzinfo=UTC),
            "start_tzid": "Europe/London", "end_tzid": "Europe/London"}
    return EventDraft(**{**base, **fields})


def test_the_create_body_carries_everything_calgate_owns():
    body = drafts.create_body(make_draft(
        description="Bring CV", location="HQ", transparency="transparent", private=True,
        attendees=(Person("ann@example.com", "Ann"), Person("bob@example.com")),
        reminders_minutes=(15, 60)), teams_allowed=True)
    assert body["subject"] == "Interview"
    assert body["body"] == {"contentType": "text", "content": "Bring CV"}
    assert body["start"] == {"dateTime": "2027-03-10T09:00:00", "timeZone": "Europe/London"}
    assert body["isAllDay"] is False and body["location"] == {"displayName": "HQ"}
    assert body["showAs"] == "free" and body["sensitivity"] == "private"
    assert body["attendees"] == [
        {"emailAddress": {"address": "ann@example.com", "name": "Ann"}, "type": "required"},
        {"emailAddress": {"address": "bob@example.com"}, "type": "required"}]
    assert (body["isReminderOn"], body["reminderMinutesBeforeStart"]) == (True, 15)
    assert body["singleValueExtendedProperties"] == [
        {"id": mapping.MANAGED_PROPERTY, "value": "app1/ev-1"}]
    assert body["transactionId"] == drafts.transaction_id("app1/ev-1")
    assert "isOnlineMeeting" not in body  # conferencing was not asked for


def test_the_transaction_id_is_stable_per_key_and_differs_between_keys():
    assert drafts.transaction_id("k1") == drafts.transaction_id("k1")
    assert drafts.transaction_id("k1") != drafts.transaction_id("k2")
    assert "transactionId" not in drafts.update_body(make_draft(), teams_allowed=False)


def test_teams_only_when_asked_and_allowed():
    asked = make_draft(conferencing=True)
    body = drafts.create_body(asked, teams_allowed=True)
    assert (body["isOnlineMeeting"], body["onlineMeetingProvider"]) == (True,
                                                                        "teamsForBusiness")
    assert "isOnlineMeeting" not in drafts.create_body(asked, teams_allowed=False)


def test_no_reminders_switch_the_reminder_off_and_all_day_is_dates():
    body = drafts.update_body(make_draft(start=date(2027, 3, 10), end=date(2027, 3, 11),
                                         start_tzid="Etc/UTC", reminders_minutes=()),
                              teams_allowed=False)
    assert body["isReminderOn"] is False and "reminderMinutesBeforeStart" not in body
    assert body["isAllDay"] is True
    assert body["start"] == {"dateTime": "2027-03-10T00:00:00", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2027-03-11T00:00:00", "timeZone": "UTC"}
    with pytest.raises(InvalidInput):
        drafts.update_body(make_draft(end=date(2027, 3, 11)), teams_allowed=False)


def test_a_body_read_back_gives_the_draft():
    draft = make_draft(attendees=(Person("ann@example.com", "Ann"),), location="HQ")
    body = drafts.create_body(draft, teams_allowed=False)
    # What Graph answers with Prefer outlook.timezone="UTC" for that body.
    answer = {**body, "id": "AAMkNew==", "type": "singleInstance",
              "start": {"dateTime": "2027-03-10T09:00:00.0000000", "timeZone": "UTC"},
              "end": {"dateTime": "2027-03-10T10:00:00.0000000", "timeZone": "UTC"},
              "originalStartTimeZone": "GMT Standard Time",
              "originalEndTimeZone": "GMT Standard Time"}
    event = mapping.event_from_graph(answer)
    assert (event.start, event.end, event.summary) == (draft.start, draft.end, draft.summary)
    assert event.managed_key == draft.managed_key and event.start_tzid == "Europe/London"
    assert [a.email for a in event.attendees] == ["ann@example.com"]


@pytest.mark.parametrize(("status", "action"), [
    ("accepted", "accept"), ("tentative", "tentativelyAccept"), ("declined", "decline")])
def test_answers_map_to_event_actions(status, action):
    assert drafts.answer_action(status) == action


def test_needs_action_is_not_an_answer():
    with pytest.raises(InvalidInput):
        drafts.answer_action("needs_action")


def test_calendar_and_schedule_bodies():
    assert drafts.calendar_body("Bookings") == {"name": "Bookings"}
    with pytest.raises(InvalidInput):
        drafts.calendar_body("  ")
    body = drafts.schedule_body("ann@contoso.com", WINDOW)
    assert body["schedules"] == ["ann@contoso.com"]
    assert body["startTime"] == {"dateTime": "2027-03-01T00:00:00", "timeZone": "UTC"}
    assert body["endTime"] == {"dateTime": "2027-04-01T00:00:00", "timeZone": "UTC"}


def test_an_explicit_conference_link_is_the_locations_uri():
    link = ConferenceLink("https://zoom.example/j/7", "Zoom")
    body = drafts.create_body(make_draft(conference_link=link), teams_allowed=True)
    assert body["location"] == {"displayName": link.join_url, "locationUri": link.join_url}
    assert "isOnlineMeeting" not in body  # not a Teams meeting
    kept = drafts.update_body(make_draft(conference_link=link, location="HQ"), False)
    assert kept["location"] == {"displayName": "HQ", "locationUri": link.join_url}
    event = mapping.event_from_graph({**body, "id": "AAMk1==", "type": "singleInstance"})
    assert (event.meeting_url, event.location) == (link.join_url, link.join_url)
    plain = mapping.event_from_graph({"id": "AAMk2==", "type": "singleInstance",
                                      "start": body["start"], "end": body["end"],
                                      "location": {"displayName": "Room",
                                                   "locationUri": "room@example.com"}})
    assert plain.meeting_url is None  # only an https locationUri is a link
