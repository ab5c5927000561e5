"""Pure conversion between exchangelib's CalendarItem and the normalised model. Zones: an
item's start and end zones are exchangelib ``EWSTimeZone``s, whose Windows names map to IANA
through exchangelib's copy of the CLDR windowsZones table (the table Graph's mapping uses)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from exchangelib import EWSDate, EWSDateTime, EWSTimeZone
from exchangelib.properties import Attendee, Mailbox

from ..model import Event, EventDraft, EventPatch, Participation, Person, TimeWindow, When

UTC = dt.UTC
_PARTICIPATION: dict[str, Participation] = {
    "Accept": "accepted", "Decline": "declined", "Tentative": "tentative",
    "NoResponseReceived": "needs_action", "Unknown": "needs_action", "Organizer": "accepted"}
# What the mapping reads, so a read asks for these fields only.
READ_FIELDS = ("subject", "text_body", "location", "start", "end", "is_all_day",
               "legacy_free_busy_status", "sensitivity", "required_attendees",
               "optional_attendees", "organizer", "my_response_type", "is_cancelled", "type",
               "last_modified_time", "categories", "calgate_key",
               "_start_timezone", "_end_timezone")


def utc(value: dt.datetime) -> dt.datetime:
    """A plain aware UTC datetime (EWSDateTime.astimezone accepts EWSTimeZones only)."""
    naive = dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond)
    offset = value.utcoffset() or dt.timedelta(0)
    return (naive - offset).replace(tzinfo=UTC)


def _when(value: Any, all_day: bool) -> When:
    if isinstance(value, dt.datetime):
        return utc(value).date() if all_day else utc(value)
    return dt.date(value.year, value.month, value.day)


def _iana(zone: Any) -> str | None:
    key = getattr(zone, "key", None)
    return str(key) if key else None


def _person(mailbox: Any, status: Participation = "needs_action") -> Person | None:
    address = getattr(mailbox, "email_address", None)
    if not address:
        return None
    return Person(str(address), getattr(mailbox, "name", None) or None, status)


def _attendees(item: Any) -> tuple[Person, ...]:
    found = []
    for attendee in [*(item.required_attendees or []), *(item.optional_attendees or [])]:
        status = _PARTICIPATION.get(attendee.response_type or "", "needs_action")
        person = _person(attendee.mailbox, status)
        if person is not None:
            found.append(person)
    return tuple(found)


def to_event(item: Any) -> Event:
    """One item (a single event, an occurrence or an exception) as the mirror keeps it."""
    all_day = bool(item.is_all_day)
    start, end = _when(item.start, all_day), _when(item.end, all_day)
    if all_day and not isinstance(item.end, dt.datetime):
        end += dt.timedelta(days=1)  # exchangelib reads an all-day end as the last day
    if all_day and end <= start:
        end = start + dt.timedelta(days=1)
    return Event(
        resource_id=item.id, instance_id=item.id, start=start, end=end,
        summary=item.subject or "", description=item.text_body or "",
        location=item.location or "",
        start_tzid=None if all_day else _iana(item._start_timezone),
        end_tzid=None if all_day else _iana(item._end_timezone),
        transparency="transparent" if item.legacy_free_busy_status == "Free" else "opaque",
        status="cancelled" if item.is_cancelled else (
            "tentative" if item.legacy_free_busy_status == "Tentative" else "confirmed"),
        participation_status=_PARTICIPATION.get(item.my_response_type or "", "unknown"),
        attendees=_attendees(item), organizer=_person(item.organizer, "accepted"),
        recurring=item.type not in (None, "Single"),
        private=item.sensitivity in ("Private", "Confidential"),
        categories=tuple(item.categories or ()), managed_key=item.calgate_key or None,
        etag=item.changekey, upstream_updated=item.last_modified_time)


def in_window(event: Event, window: TimeWindow) -> bool:
    def instant(value: When) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)

    return instant(event.start) < window.end and instant(event.end) > window.start


def ews_time(value: When, tzid: str) -> EWSDate | EWSDateTime:
    if not isinstance(value, dt.datetime):
        return EWSDate(value.year, value.month, value.day)
    zone = EWSTimeZone(tzid if tzid != "Etc/UTC" else "UTC")
    return EWSDateTime.from_datetime(value).astimezone(zone)


def _inclusive(end: When) -> When:
    """exchangelib takes an all-day item's end as its last day (and adds the day back when
    it writes EWS's exclusive end); ours is exclusive."""
    if isinstance(end, dt.datetime):
        return end
    return end - dt.timedelta(days=1)


def draft_fields(draft: EventDraft) -> dict[str, Any]:
    """The CalendarItem fields a draft sets (all of them: a draft is the whole event)."""
    all_day = not isinstance(draft.start, dt.datetime)
    return {
        "subject": draft.summary, "body": draft.description or None,
        "location": draft.location or None,
        "start": ews_time(draft.start, draft.start_tzid),
        "end": ews_time(_inclusive(draft.end), draft.end_tzid), "is_all_day": all_day,
        "legacy_free_busy_status": "Free" if draft.transparency == "transparent" else "Busy",
        "sensitivity": "Private" if draft.private else "Normal",
        "required_attendees": [Attendee(mailbox=Mailbox(email_address=p.email,
                                                        name=p.display_name),
                                        response_type="Unknown")
                               for p in draft.attendees] or None,
        "reminder_is_set": bool(draft.reminders_minutes),
        "reminder_minutes_before_start": (min(draft.reminders_minutes)
                                          if draft.reminders_minutes else 0),
        "calgate_key": draft.managed_key,
    }


def patch_fields(patch: EventPatch) -> dict[str, Any]:
    """Only what the patch sets."""
    found: dict[str, Any] = {}
    if patch.summary is not None:
        found["subject"] = patch.summary
    if patch.description is not None:
        found["body"] = patch.description or None
    if patch.location is not None:
        found["location"] = patch.location or None
    if patch.transparency is not None:
        found["legacy_free_busy_status"] = ("Free" if patch.transparency == "transparent"
                                            else "Busy")
    times = patch.times
    if times is not None:
        found["start"] = ews_time(times[0], patch.start_tzid)
        found["end"] = ews_time(_inclusive(times[1]), patch.end_tzid)
        found["is_all_day"] = not isinstance(times[0], dt.datetime)
    return found
