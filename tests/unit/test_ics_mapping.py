"""Parsing and expanding iCalendar feeds into the normalised model, without any server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from providers.errors import InvalidInput
from providers.ics.expansion import expand, parse_calendar, read_feed, read_info
from providers.ics.mapping import busy_blocks, calendar_id_for, content_digest
from providers.model import Event, Person, TimeWindow

WINDOW = TimeWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))
BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
"""


def make_feed(*events: str, header: str = "") -> bytes:
    body = "".join(f"BEGIN:VEVENT\nDTSTAMP:20260101T000000Z\n{e.strip()}\nEND:VEVENT\n"
                   for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{header}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def make_resources(*events: str, header: str = "",
                   window: TimeWindow = WINDOW) -> dict[str, list[Event]]:
    return read_feed(make_feed(*events, header=header), window)[1]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_weekly_series_keeps_local_time_across_dst() -> None:
    resources = make_resources("""UID:w
DTSTART;TZID=Europe/Berlin:20270322T090000
DTEND;TZID=Europe/Berlin:20270322T100000
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Standup""", header=BERLIN)
    starts = [e.start for e in resources["w"]]
    assert starts == [utc(2027, 3, 22, 8), utc(2027, 3, 29, 7), utc(2027, 4, 5, 7)]
    assert all(e.recurring and e.start_tzid == "Europe/Berlin" for e in resources["w"])
    assert [e.instance_id for e in resources["w"]] == [
        "w@2027-03-22T08:00:00+00:00", "w@2027-03-29T07:00:00+00:00",
        "w@2027-04-05T07:00:00+00:00"]


def test_iana_tzid_without_vtimezone_is_understood() -> None:
    (event,) = make_resources("""UID:ny
DTSTART;TZID=America/New_York:20270310T090000
DURATION:PT30M""")["ny"]
    assert (event.start, event.end) == (utc(2027, 3, 10, 14), utc(2027, 3, 10, 14, 30))
    assert event.start_tzid == event.end_tzid == "America/New_York"


def test_outlook_windows_zone_names_map_to_iana() -> None:
    (event,) = make_resources("""UID:win
DTSTART;TZID=W. Europe Standard Time:20270610T090000
DTEND;TZID=W. Europe Standard Time:20270610T100000""")["win"]
    assert event.start == utc(2027, 6, 10, 7)


def test_custom_vtimezone_with_a_private_name_still_gives_the_right_instant() -> None:
    zone = """BEGIN:VTIMEZONE
TZID:Custom Plus Three
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
END:STANDARD
END:VTIMEZONE
"""
    (event,) = make_resources("""UID:c
DTSTART;TZID=Custom Plus Three:20270210T120000
DTEND;TZID=Custom Plus Three:20270210T130000""", header=zone)["c"]
    assert event.start == utc(2027, 2, 10, 9)


def test_all_day_events_are_dates_with_an_exclusive_end() -> None:
    resources = make_resources("""UID:one
DTSTART;VALUE=DATE:20270325
SUMMARY:Holiday""", """UID:three
DTSTART;VALUE=DATE:20270401
DTEND;VALUE=DATE:20270404
SUMMARY:Offsite""")
    (one,) = resources["one"]
    (three,) = resources["three"]
    assert (one.start, one.end, one.all_day) == (date(2027, 3, 25), date(2027, 3, 26), True)
    assert (three.start, three.end) == (date(2027, 4, 1), date(2027, 4, 4))
    assert one.start_tzid is None and not one.recurring


def test_recurring_all_day_instances_are_keyed_by_date() -> None:
    events = make_resources("""UID:bday
DTSTART;VALUE=DATE:20200515
RRULE:FREQ=YEARLY
SUMMARY:Birthday""")["bday"]
    assert [(e.start, e.end, e.instance_id) for e in events] == [
        (date(2027, 5, 15), date(2027, 5, 16), "bday@2027-05-15")]


def test_floating_times_are_utc_without_x_wr_timezone() -> None:
    (event,) = make_resources("UID:f\nDTSTART:20270310T090000\nDTEND:20270310T100000")["f"]
    assert event.start == utc(2027, 3, 10, 9)
    assert event.start_tzid is None


def test_floating_times_use_x_wr_timezone() -> None:
    header = "X-WR-TIMEZONE:America/New_York\n"
    (event,) = make_resources("UID:f\nDTSTART:20270310T090000\nDTEND:20270310T100000",
                              header=header)["f"]
    assert event.start == utc(2027, 3, 10, 14)
    assert event.start_tzid == "America/New_York"
    assert read_info(make_feed(header=header)).tzid == "America/New_York"


def test_an_unknown_x_wr_timezone_is_ignored_not_fatal() -> None:
    header = "X-WR-TIMEZONE:Mars/Olympus_Mons\n"
    (event,) = make_resources("UID:f\nDTSTART:20270310T090000", header=header)["f"]
    assert event.start == utc(2027, 3, 10, 9)
    assert read_info(make_feed(header=header)).tzid is None


def test_rdate_adds_instances() -> None:
    events = make_resources("""UID:r
DTSTART:20270301T100000Z
DURATION:PT1H
RRULE:FREQ=MONTHLY;COUNT=2
RDATE:20270315T100000Z,20270320T120000Z""")["r"]
    assert [e.start for e in events] == [utc(2027, 3, 1, 10), utc(2027, 3, 15, 10),
                                         utc(2027, 3, 20, 12), utc(2027, 4, 1, 10)]
    assert all(e.end == e.start + timedelta(hours=1) for e in events)


def test_override_moves_one_instance_and_keeps_its_original_key() -> None:
    events = make_resources("""UID:o
DTSTART:20270301T100000Z
DTEND:20270301T110000Z
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Daily""", """UID:o
RECURRENCE-ID:20270302T100000Z
DTSTART:20270302T150000Z
DTEND:20270302T160000Z
SUMMARY:Daily (moved)""")["o"]
    moved = next(e for e in events if e.summary == "Daily (moved)")
    assert moved.start == utc(2027, 3, 2, 15)
    assert moved.instance_id == "o@2027-03-02T10:00:00+00:00"
    assert moved.recurring
    assert len(events) == 3


def test_exdate_removes_instances() -> None:
    events = make_resources("""UID:x
DTSTART;TZID=Europe/Berlin:20270301T090000
DTEND;TZID=Europe/Berlin:20270301T100000
RRULE:FREQ=DAILY;COUNT=4
EXDATE;TZID=Europe/Berlin:20270302T090000,20270303T090000""", header=BERLIN)["x"]
    assert [e.start for e in events] == [utc(2027, 3, 1, 8), utc(2027, 3, 4, 8)]


def test_count_and_until_end_a_series() -> None:
    resources = make_resources("""UID:count
DTSTART:20270101T080000Z
RRULE:FREQ=WEEKLY;COUNT=2""", """UID:until
DTSTART:20270101T080000Z
RRULE:FREQ=DAILY;UNTIL=20270103T080000Z""")
    assert len(resources["count"]) == 2
    assert [e.start.day for e in resources["until"]] == [1, 2, 3]


def test_cancelled_instance_is_kept_as_cancelled_and_does_not_block() -> None:
    events = make_resources("""UID:c
DTSTART:20270301T100000Z
DTEND:20270301T110000Z
RRULE:FREQ=DAILY;COUNT=2""", """UID:c
RECURRENCE-ID:20270302T100000Z
DTSTART:20270302T100000Z
DTEND:20270302T110000Z
STATUS:CANCELLED""")["c"]
    assert [e.status for e in events] == ["confirmed", "cancelled"]
    assert [b.start for b in busy_blocks(events)] == [utc(2027, 3, 1, 10)]


def test_properties_and_people_are_mapped() -> None:
    (event,) = make_resources("""UID:p
DTSTART:20270310T090000Z
DTEND:20270310T100000Z
SUMMARY:Review
DESCRIPTION:Line one\\nLine two
LOCATION:Room 4\\, floor 2
TRANSP:TRANSPARENT
STATUS:TENTATIVE
CLASS:PRIVATE
CATEGORIES:Work,Planning
CATEGORIES:Q1
URL:https://example.com/review
LAST-MODIFIED:20270301T120000Z
ORGANIZER;CN="Bob, B":mailto:bob@example.com
ATTENDEE;CN=Ann;PARTSTAT=ACCEPTED:MAILTO:ann@example.com
ATTENDEE;PARTSTAT=DECLINED:mailto:carl@example.com
ATTENDEE:mailto:dora@example.com""")["p"]
    assert (event.summary, event.description, event.location) == (
        "Review", "Line one\nLine two", "Room 4, floor 2")
    assert (event.transparency, event.status, event.private) == (
        "transparent", "tentative", True)
    assert event.categories == ("Work", "Planning", "Q1")
    assert event.url == "https://example.com/review"
    assert event.upstream_updated == utc(2027, 3, 1, 12)
    assert event.organizer == Person("bob@example.com", "Bob, B", "unknown")
    assert event.attendees == (Person("ann@example.com", "Ann", "accepted"),
                               Person("carl@example.com", None, "declined"),
                               Person("dora@example.com", None, "needs_action"))
    assert event.participation_status == "unknown"
    assert event.instance_id == "p" and not event.recurring


def test_defaults_are_opaque_and_confirmed_and_tentative_blocks_as_tentative() -> None:
    resources = make_resources("UID:d\nDTSTART:20270310T090000Z\nDURATION:PT1H",
                               "UID:t\nDTSTART:20270311T090000Z\nDURATION:PT1H\nSTATUS:TENTATIVE")
    (plain,) = resources["d"]
    assert (plain.transparency, plain.status, plain.private) == ("opaque", "confirmed", False)
    blocks = busy_blocks(resources["d"] + resources["t"])
    assert [b.status for b in blocks] == ["busy", "tentative"]


def test_a_full_listing_names_resources_outside_the_window() -> None:
    resources = make_resources("UID:in\nDTSTART:20270310T090000Z",
                               "UID:out\nDTSTART:20300310T090000Z")
    assert resources["out"] == [] and len(resources["in"]) == 1


def test_window_is_half_open() -> None:
    window = TimeWindow(utc(2027, 3, 10, 10), utc(2027, 3, 10, 12))
    resources = make_resources("UID:before\nDTSTART:20270310T090000Z\nDTEND:20270310T100000Z",
                               "UID:inside\nDTSTART:20270310T110000Z\nDTEND:20270310T113000Z",
                               "UID:after\nDTSTART:20270310T120000Z\nDTEND:20270310T130000Z",
                               window=window)
    assert {uid for uid, events in resources.items() if events} == {"inside"}


def test_an_event_without_uid_gets_a_stable_one() -> None:
    first = make_resources("DTSTART:20270310T090000Z\nSUMMARY:Anonymous")
    second = make_resources("DTSTART:20270310T090000Z\nSUMMARY:Anonymous")
    (uid,) = first
    assert uid.startswith("calgate-") and list(second) == [uid]


def test_a_broken_series_does_not_hide_the_rest() -> None:
    resources = make_resources("UID:bad\nDTSTART:20270310T090000Z\nRRULE:FREQ=SOMETIMES",
                               "UID:good\nDTSTART:20270311T090000Z")
    assert len(resources["good"]) == 1


@pytest.mark.parametrize("rule", ["FREQ=MINUTELY", "FREQ=HOURLY", "FREQ=SECONDLY;INTERVAL=5"])
def test_rules_walking_decades_before_the_window_are_not_expanded(rule: str) -> None:
    # Expanding them would walk millions of occurrences; the cost is measured in bench/.
    resources = make_resources(f"UID:m\nDTSTART:19700101T000000Z\nRRULE:{rule}",
                               "UID:ok\nDTSTART:20270311T090000Z")
    assert resources["m"] == [] and len(resources["ok"]) == 1


def test_short_fast_rules_and_slow_old_rules_are_still_expanded() -> None:
    resources = make_resources(
        "UID:min\nDTSTART:20270310T090000Z\nDURATION:PT1M\nRRULE:FREQ=MINUTELY;COUNT=3",
        "UID:hourly\nDTSTART:20270101T000000Z\nDURATION:PT1M\nRRULE:FREQ=HOURLY;INTERVAL=12",
        "UID:old\nDTSTART;VALUE=DATE:19000301\nRRULE:FREQ=YEARLY")
    assert len(resources["min"]) == 3
    assert len(resources["hourly"]) == 2 * 181
    assert [e.start for e in resources["old"]] == [date(2027, 3, 1)]


def test_the_expansion_budget_is_enforced() -> None:
    body = make_feed(*(f"UID:s{i}\nDTSTART:20270101T000000Z\nRRULE:FREQ=DAILY"
                       for i in range(50)))
    with pytest.raises(InvalidInput, match="too long"):
        expand(parse_calendar(body), WINDOW, budget_seconds=0)


def test_too_many_instances_is_invalid_input() -> None:
    body = make_feed("UID:h\nDTSTART:20270101T000000Z\nRRULE:FREQ=HOURLY")
    with pytest.raises(InvalidInput, match="more than 100"):
        expand(parse_calendar(body), WINDOW, max_instances=100)


@pytest.mark.parametrize("body", [
    b"<!doctype html><html><body>Sign in</body></html>",
    b"",
    b"BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\n",
])
def test_a_body_that_is_not_a_calendar_is_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not return an iCalendar feed"):
        parse_calendar(body)


def test_a_broken_calendar_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid iCalendar"):
        parse_calendar(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n")


def test_feed_info_reads_the_calendar_name_and_a_bom_is_tolerated() -> None:
    body = b"\xef\xbb\xbf" + make_feed(header="X-WR-CALNAME:Team \\, ops\n")
    assert read_info(body).name == "Team , ops"


def test_digest_ignores_dtstamp_and_calendar_ids_are_stable() -> None:
    a = make_feed("UID:a\nDTSTART:20270310T090000Z")
    b = a.replace(b"DTSTAMP:20260101T000000Z", b"DTSTAMP:20261231T235959Z")
    assert content_digest(a) == content_digest(b)
    assert content_digest(a) != content_digest(a.replace(b"UID:a", b"UID:b"))
    url = "https://example.com/cal.ics"
    assert calendar_id_for(url) == calendar_id_for(url) != calendar_id_for(url + "?x=1")
