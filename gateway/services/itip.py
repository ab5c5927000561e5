"""iTIP (RFC 5546) over email (iMIP, RFC 6047) for Smart Invites: pure functions.

Calgate organizes each Smart Invite from one mailbox the operator configures: the invitation
it builds (``METHOD:REQUEST``, or ``METHOD:CANCEL``) names that mailbox as ORGANIZER, so the
recipient's calendar sends its answer (``METHOD:REPLY``, RFC 5546 s3.2.3) there, and the
operator's inbound-mail service posts it back to Calgate. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from icalendar import Alarm, Calendar, Component, Event, vCalAddress, vText

from ..domain.desired import DesiredEvent

log = logging.getLogger("calgate.smart_invites")

PRODID = "-//Calgate//Smart Invites//EN"
Method = Literal["REQUEST", "CANCEL"]
# RFC 5545 s3.2.12 PARTSTAT of a VEVENT attendee -> Cronofy's recipient status.
STATUS_OF_PARTSTAT = {"ACCEPTED": "accepted", "TENTATIVE": "tentative",
                      "DECLINED": "declined", "NEEDS-ACTION": "pending"}
MAX_CALENDAR_CHARS = 256 * 1024  # a reply is a few KiB; anything bigger is not one


@dataclass(frozen=True, slots=True)
class Invitation:
    """What one iTIP message says: the event, who organizes it, and to whom it goes."""

    uid: str
    sequence: int
    event: DesiredEvent
    organizer_mailbox: str
    organizer_name: str | None
    attendees: tuple[str, ...]
    geo: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One attendee's answer (``METHOD:REPLY``) to an invitation."""

    uid: str
    attendee: str  # the address of ATTENDEE, without mailto:
    partstat: str  # upper case, as sent
    sequence: int
    comment: str | None = None

    @property
    def status(self) -> str | None:
        """Cronofy's status for the answer; None for one it has no word for (DELEGATED)."""
        return STATUS_OF_PARTSTAT.get(self.partstat)


def build(invitation: Invitation, method: Method, now: datetime | None = None) -> str:
    """The VCALENDAR of a REQUEST or CANCEL, as text with CRLF line ends (RFC 5545 s3.1)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(_vevent(invitation, method, now or datetime.now(UTC)))
    text: str = calendar.to_ical().decode("utf-8")
    return text


def _vevent(invitation: Invitation, method: Method, now: datetime) -> Event:
    event = invitation.event
    vevent = Event()
    vevent.add("uid", invitation.uid)
    vevent.add("sequence", invitation.sequence)
    vevent.add("dtstamp", now.astimezone(UTC).replace(microsecond=0))
    vevent.add("dtstart", _moment(event.start))
    vevent.add("dtend", _moment(event.end))
    vevent.add("summary", event.summary)
    if event.description:
        vevent.add("description", event.description)
    if event.location:
        vevent.add("location", event.location)
    if event.url:
        vevent.add("url", event.url)
    if invitation.geo is not None:
        vevent.add("geo", invitation.geo)
    vevent.add("transp", "TRANSPARENT" if event.transparency == "transparent" else "OPAQUE")
    vevent.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{invitation.organizer_mailbox}")
    if invitation.organizer_name:
        organizer.params["CN"] = vText(invitation.organizer_name)
    vevent.add("organizer", organizer)
    for email in invitation.attendees:
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
                                "RSVP": "TRUE", "CUTYPE": "INDIVIDUAL"})
        vevent.add("attendee", attendee)
    if method == "REQUEST":
        for minutes in event.reminders or ():
            vevent.add_component(_alarm(minutes, event.summary))
    return vevent


def _moment(value: date | datetime) -> date | datetime:
    """Times in UTC (``…Z``): every calendar reads them without a VTIMEZONE; dates as
    ``VALUE=DATE`` (an all-day event)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _alarm(minutes: int, summary: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm


def replies_in(text: str) -> list[Reply]:
    """The attendee answers in a ``METHOD:REPLY`` calendar; [] for anything else (another
    method, text that is not iCalendar, a reply without UID or attendee)."""
    if len(text) > MAX_CALENDAR_CHARS:
        return []
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        log.info("an inbound calendar part is not iCalendar: %s", type(exc).__name__)
        return []
    found: list[Reply] = []
    for calendar in calendars:
        if str(calendar.get("method", "")).strip().upper() != "REPLY":
            continue
        for vevent in calendar.walk("VEVENT"):
            found.extend(_replies(vevent))
    return found


def _replies(vevent: Component) -> list[Reply]:
    uid = str(vevent.get("uid", "")).strip()
    attendees = vevent.get("attendee")
    if not uid or attendees is None:
        return []
    if not isinstance(attendees, list):
        attendees = [attendees]
    try:
        sequence = int(vevent.get("sequence", 0))
    except (TypeError, ValueError):
        return []
    comment = vevent.get("comment")
    text = str(comment).strip() if comment is not None else None
    found = []
    for attendee in attendees:
        address = _address(str(attendee))
        partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).strip().upper()
        if address and partstat:
            found.append(Reply(uid, address, partstat, sequence, text or None))
    return found


def _address(value: str) -> str | None:
    """``mailto:Someone@Example.com`` -> ``Someone@Example.com``; None if it is no address."""
    value = value.strip()
    if value[:7].lower() == "mailto:":
        value = value[7:]
    local, at, domain = value.partition("@")
    if not at or not local or not domain or any(c.isspace() for c in value):
        return None
    return value
