"""iTIP for Smart Invites (gateway/services/itip.py) and the calendar parts of inbound mail
(gateway/services/inbound_mail.py): pure functions, no servers."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

from icalendar import Calendar

from gateway.domain.desired import DesiredEvent
from gateway.services.inbound_mail import (
    calendars_in_form,
    calendars_in_mime,
    calendars_in_postmark,
)
from gateway.services.itip import Invitation, build, replies_in
from tests.support.imip import reply_calendar, reply_mail

MEETING = DesiredEvent(summary="Mentoring; part 1, intro", start=datetime(2027, 1, 5, 9, 30,
                                                                         tzinfo=UTC),
                       end=datetime(2027, 1, 5, 10, tzinfo=UTC), description="Line 1\nLine 2",
                       location="Room 4", reminders=(10, 60))
INVITATION = Invitation("u1@calgate.test", 3, MEETING, "invites@calgate.test", "Mentor Hub",
                        ("a@example.org", "b@example.org"), (51.5, -0.125))


def vevent(text: str):
    calendar = Calendar.from_ical(text)
    return calendar, next(iter(calendar.walk("VEVENT")))


def test_a_request_round_trips_through_a_parser():
    calendar, event = vevent(build(INVITATION, "REQUEST"))
    assert str(calendar["method"]) == "REQUEST"
    assert (str(event["uid"]), int(event["sequence"])) == ("u1@calgate.test", 3)
    assert str(event["summary"]) == MEETING.summary  # escaped ; and , come back intact
    assert str(event["description"]) == MEETING.description
    assert event.decoded("dtstart") == MEETING.start
    assert str(event["status"]) == "CONFIRMED"
    assert [str(a) for a in event["attendee"]] == ["mailto:a@example.org",
                                                  "mailto:b@example.org"]
    assert len(list(event.walk("VALARM"))) == 2
    assert event.decoded("geo") is not None


def test_a_cancel_says_cancelled_and_sets_no_alarms():
    calendar, event = vevent(build(INVITATION, "CANCEL"))
    assert str(calendar["method"]) == "CANCEL"
    assert str(event["status"]) == "CANCELLED"
    assert list(event.walk("VALARM")) == []


def test_an_all_day_event_is_a_date():
    day = DesiredEvent(summary="Retreat", start=date(2027, 6, 1), end=date(2027, 6, 3))
    _, event = vevent(build(Invitation("u2@x.test", 0, day, "m@x.test", None, ("a@x.test",)),
                            "REQUEST"))
    assert event.decoded("dtstart") == date(2027, 6, 1)
    assert "CN" not in event["organizer"].params


def test_replies_are_read_from_reply_calendars_only():
    request = build(INVITATION, "REQUEST")
    [reply] = replies_in(reply_calendar(request, "B@Example.org", "declined", comment="Away"))
    assert (reply.uid, reply.attendee, reply.partstat, reply.sequence, reply.comment) == (
        "u1@calgate.test", "B@Example.org", "DECLINED", 3, "Away")
    assert reply.status == "declined"
    assert replies_in(request) == []  # a REQUEST is no answer
    assert replies_in("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n") == []
    assert replies_in("x" * 300_000) == []
    delegated = replies_in(reply_calendar(request, "a@example.org", "DELEGATED"))
    assert delegated[0].status is None


def test_the_calendar_parts_of_each_mail_shape():
    answer = reply_calendar(build(INVITATION, "REQUEST"), "a@example.org", "ACCEPTED")
    mime = reply_mail(answer, "a@example.org", "invites@calgate.test")
    # The alternative (line ends as mail gives them) and the .ics copy: the same answer.
    assert {c.replace("\r\n", "\n") for c in calendars_in_mime(mime)} == {
        answer.replace("\r\n", "\n")}
    assert calendars_in_form({"email": mime.decode()}, []) == calendars_in_mime(mime)
    assert calendars_in_form({"body-mime": mime.decode()}, []) == calendars_in_mime(mime)
    files = [("invite.ics", "application/octet-stream", answer.encode()),
             ("photo.png", "image/png", b"\x89PNG")]
    assert calendars_in_form({}, files) == [answer]
    postmark = {"Attachments": [{"Name": "x", "ContentType": "text/calendar",
                                 "Content": base64.b64encode(answer.encode()).decode()}]}
    assert calendars_in_postmark(postmark) == [answer]
    assert calendars_in_postmark({"RawEmail": mime.decode()}) == calendars_in_mime(mime)
    assert calendars_in_postmark({"Attachments": [{"ContentType": "text/calendar",
                                                   "Content": "%%%"}]}) == []
    assert calendars_in_mime(b"not a message at all") == []
