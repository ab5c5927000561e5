"""Events in one mailbox: create (with ``transactionId`` idempotency), update (an
occurrence's id makes an exception of it), delete (an occurrence's id cancels it), look-up
by any id, the instances of a time window (singles, occurrences, exceptions) or of one
series, and the mailbox owner's answers to invitations (accept, tentativelyAccept, decline:
an occurrence's id answers that occurrence, making an exception of it)."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from .errors import GraphError, invalid, not_found
from .state import Calendar, Mailbox, StoredEvent, World, new_change_key, new_id
from .timeutil import (
    UTC,
    at_local,
    check_recurrence,
    iso_z,
    occurrence_dates,
    parse_when,
    zone,
)

WRITABLE = ("subject", "body", "isAllDay", "location", "locations", "attendees", "showAs",
            "categories", "importance", "sensitivity", "isReminderOn", "recurrence",
            "reminderMinutesBeforeStart", "responseRequested", "allowNewTimeProposals",
            "isOnlineMeeting", "onlineMeetingProvider", "hideAttendees")
NO_RESPONSE = {"response": "none", "time": "0001-01-01T00:00:00Z"}
NOT_ANSWERED = {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
OCCURRENCE_PREFIX = "AAMkOcc"


def occurrence_id(master_id: str, original_start: datetime) -> str:
    raw = f"{master_id}|{iso_z(original_start)}".encode()
    return OCCURRENCE_PREFIX + base64.urlsafe_b64encode(raw).decode()


def parse_occurrence_id(event_id: str) -> tuple[str, str] | None:
    if not event_id.startswith(OCCURRENCE_PREFIX):
        return None
    try:
        master_id, _, when = base64.urlsafe_b64decode(
            event_id[len(OCCURRENCE_PREFIX):]).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        return None
    return master_id, when


class Events:
    """The events of one mailbox, with change notifications to the world's listeners."""

    def __init__(self, world: World, box: Mailbox) -> None:
        self.world, self.box = world, box

    # -- look-up ------------------------------------------------------------------------

    def find(self, event_id: str) -> tuple[Calendar, StoredEvent]:
        """Any event id: single, master, exception or (computed) occurrence."""
        occurrence = parse_occurrence_id(event_id)
        for calendar in self.box.calendars.values():
            if event_id in calendar.events:
                return calendar, calendar.events[event_id]
            if occurrence and occurrence[0] in calendar.events:
                master = calendar.events[occurrence[0]]
                view = self._occurrence(master, occurrence[1])
                if view is not None:
                    return calendar, view
        raise not_found()

    def _occurrence(self, master: StoredEvent, when: str) -> StoredEvent | None:
        if when in master.exceptions:
            return master.exceptions[when]
        if when in master.cancelled:
            return None
        start = datetime.fromisoformat(when.replace("Z", "+00:00"))
        if not any(s == start for s, _ in self.series_starts(master, start, start)):
            return None
        return self._occurrence_view(master, start)

    def _occurrence_view(self, master: StoredEvent, start: datetime) -> StoredEvent:
        resource = dict(master.resource, id=occurrence_id(master.id, start),
                        type="occurrence", seriesMasterId=master.id, recurrence=None)
        return StoredEvent(resource, start, start + (master.end - master.start),
                           master.extended, master_id=master.id, original_start=start)

    # -- windows ------------------------------------------------------------------------

    def series_starts(self, master: StoredEvent, lo: datetime,
                      hi: datetime) -> Iterator[tuple[datetime, str]]:
        """(original start, its ISO key) of a series' occurrences starting in [lo - duration,
        hi]; cancelled ones included."""
        tz = master.resource.get("originalStartTimeZone") or "UTC"
        local = master.start.astimezone(zone(tz))
        until = (hi.astimezone(zone(tz)) + timedelta(days=1)).date()
        for day in occurrence_dates(master.resource["recurrence"], local.date(), until):
            start = at_local(day, local.time().replace(tzinfo=None), tz)
            if start > hi:
                return
            if start + (master.end - master.start) >= lo:
                yield start, iso_z(start)

    def window(self, calendar: Calendar, lo: datetime, hi: datetime) -> list[StoredEvent]:
        """What calendarView shows: singles, occurrences and exceptions overlapping."""
        out: list[StoredEvent] = []
        for stored in calendar.events.values():
            if stored.resource.get("type") != "seriesMaster":
                if _overlaps(stored, lo, hi):
                    out.append(stored)
                continue
            out.extend(self.instances(stored, lo, hi))
        return sorted(out, key=lambda e: (e.start, e.id))

    def instances(self, master: StoredEvent, lo: datetime, hi: datetime) -> list[StoredEvent]:
        """A series' occurrences and exceptions overlapping [lo, hi), cancelled ones left
        out; nothing for an event that is not a series master."""
        if master.resource.get("type") != "seriesMaster":
            return []
        out: list[StoredEvent] = []
        for start, key in self.series_starts(master, lo, hi):
            if key in master.cancelled or key in master.exceptions:
                continue
            view = self._occurrence_view(master, start)
            if _overlaps(view, lo, hi):
                out.append(view)
        out.extend(e for e in master.exceptions.values() if _overlaps(e, lo, hi))
        return sorted(out, key=lambda e: (e.start, e.id))

    # -- writes -------------------------------------------------------------------------

    def create(self, calendar: Calendar, body: dict[str, Any],
               event_id: str | None = None) -> tuple[StoredEvent, bool]:
        """The stored event and whether it is new (False: a repeated transactionId).
        ``event_id`` names it (the control API's, for tests that key events by name;
        Graph itself always picks the id)."""
        transaction = body.get("transactionId")
        if transaction and transaction in self.box.transactions:
            cal_id, event_id = self.box.transactions[transaction]
            existing = self.box.calendars[cal_id].events.get(event_id)
            if existing is not None:
                return existing, False
        start, start_tz = parse_when(body.get("start"))
        end, end_tz = parse_when(body.get("end"))
        if end < start:
            raise invalid("The Event's end time must be after its start time.")
        now = datetime.now(UTC)
        user = self.box.user
        if event_id is not None and any(event_id in c.events
                                        for c in self.box.calendars.values()):
            raise GraphError(409, "ErrorItemExists", f"An event {event_id} exists.")
        resource = {"id": event_id or new_id(), "createdDateTime": iso_z(now),
                    "iCalUId": "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper(),
                    "transactionId": transaction, "originalStartTimeZone": start_tz,
                    "originalEndTimeZone": end_tz, "subject": "", "isAllDay": False,
                    "body": {"contentType": "html", "content": ""}, "showAs": "busy",
                    "type": "seriesMaster" if body.get("recurrence") else "singleInstance",
                    "attendees": [], "isCancelled": False, "isOrganizer": True,
                    "organizer": {"emailAddress": {"name": user.name, "address": user.email}},
                    "responseStatus": {"response": "organizer",
                                       "time": "0001-01-01T00:00:00Z"}}
        stored = StoredEvent(resource, start, end)
        self._apply(calendar, stored, body)
        calendar.events[stored.id] = stored
        if transaction:
            self.box.transactions[transaction] = (calendar.id, stored.id)
        self.world.changed(self.box.user.email, calendar.id, stored.id, "created")
        return stored, True

    def update(self, event_id: str, body: dict[str, Any]) -> StoredEvent:
        calendar, stored = self._changing(event_id)
        if "start" in body:
            stored.start, stored.resource["originalStartTimeZone"] = parse_when(body["start"])
        if "end" in body:
            stored.end, stored.resource["originalEndTimeZone"] = parse_when(body["end"])
        self._apply(calendar, stored, body)
        self.world.changed(self.box.user.email, calendar.id, stored.id, "updated")
        return stored

    def _changing(self, event_id: str) -> tuple[Calendar, StoredEvent]:
        """The event to change; an occurrence becomes an exception of its series first."""
        calendar, stored = self.find(event_id)
        if stored.master_id is not None and stored.resource.get("type") == "occurrence":
            master = calendar.events[stored.master_id]
            assert stored.original_start is not None
            stored.resource = dict(copy.deepcopy(stored.resource), type="exception")
            master.exceptions[iso_z(stored.original_start)] = stored
        return calendar, stored

    def invited(self, stored: StoredEvent, organizer: tuple[str, str]) -> None:
        """Make a new event an invitation from ``organizer`` (name, address), unanswered."""
        name, address = organizer
        stored.resource.update(isOrganizer=False, responseRequested=True,
                               organizer={"emailAddress": {"name": name, "address": address}},
                               responseStatus=dict(NOT_ANSWERED))

    def answer(self, event_id: str, response: str) -> StoredEvent:
        """The mailbox's owner answers an invitation (accepted, tentativelyAccepted,
        declined): a series master for the whole series, an occurrence for itself alone.
        The organizer cannot answer their own meeting."""
        if self.find(event_id)[1].resource.get("isOrganizer"):
            raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. "
                             "You can't respond to this meeting because you're the meeting "
                             "organizer.")
        calendar, stored = self._changing(event_id)
        answered = {"response": response, "time": iso_z(datetime.now(UTC))}
        for one in [stored, *stored.exceptions.values()]:
            one.resource["responseStatus"] = dict(answered)
            one.resource["changeKey"] = new_change_key()
            one.resource["lastModifiedDateTime"] = answered["time"]
        self.world.changed(self.box.user.email, calendar.id, stored.id, "updated")
        return stored

    def delete(self, event_id: str) -> None:
        calendar, stored = self.find(event_id)
        if stored.master_id is not None:
            master = calendar.events[stored.master_id]
            assert stored.original_start is not None
            key = iso_z(stored.original_start)
            master.exceptions.pop(key, None)
            master.cancelled.add(key)
            master.resource["changeKey"] = new_change_key()
        else:
            del calendar.events[stored.id]
        self.world.changed(self.box.user.email, calendar.id, stored.id, "deleted")

    def _apply(self, calendar: Calendar, stored: StoredEvent, body: dict[str, Any]) -> None:
        resource = stored.resource
        for name in WRITABLE:
            if name in body:
                resource[name] = copy.deepcopy(body[name])
        for attendee in resource.get("attendees") or []:
            attendee.setdefault("type", "required")
            attendee.setdefault("status", dict(NO_RESPONSE))
        for prop in body.get("singleValueExtendedProperties") or []:
            stored.extended[str(prop["id"])] = str(prop.get("value", ""))
        if resource.get("recurrence") is not None:
            check_recurrence(resource["recurrence"])
            if resource.get("type") == "singleInstance":  # a PATCH makes a series of it
                resource["type"] = "seriesMaster"
        if resource.get("type") == "seriesMaster" and resource.get("recurrence") is None:
            resource["type"] = "singleInstance"
        self._online_meeting(calendar, resource)
        resource["changeKey"] = new_change_key()
        resource["lastModifiedDateTime"] = iso_z(datetime.now(UTC))

    def _online_meeting(self, calendar: Calendar, resource: dict[str, Any]) -> None:
        if not resource.get("isOnlineMeeting"):
            resource.update(isOnlineMeeting=False, onlineMeeting=None,
                            onlineMeetingProvider="unknown")
            return
        if self.box.user.personal:  # Outlook.com ignores it silently, as Graph does
            resource.update(isOnlineMeeting=False, onlineMeeting=None,
                            onlineMeetingProvider="unknown")
            return
        if not resource.get("onlineMeeting"):
            resource["onlineMeeting"] = {"joinUrl": "https://teams.microsoft.com/l/meetup-join/"
                                                    f"19%3ameeting_{uuid.uuid4().hex}"
                                                    "%40thread.v2/0"}
        resource["onlineMeetingProvider"] = "teamsForBusiness"

    def respond(self, event_id: str, address: str, response: str) -> StoredEvent:
        """An attendee answers (accepted, tentativelyAccepted, declined)."""
        calendar, stored = self.find(event_id)
        for attendee in stored.resource.get("attendees") or []:
            if attendee["emailAddress"]["address"].lower() == address.lower():
                attendee["status"] = {"response": response, "time": iso_z(datetime.now(UTC))}
                break
        else:
            raise GraphError(400, "ErrorInvalidRequest", f"{address} is not an attendee")
        stored.resource["changeKey"] = new_change_key()
        stored.resource["lastModifiedDateTime"] = iso_z(datetime.now(UTC))
        self.world.changed(self.box.user.email, calendar.id, stored.id, "updated")
        return stored


def _overlaps(stored: StoredEvent, lo: datetime, hi: datetime) -> bool:
    if stored.start == stored.end:
        return lo <= stored.start < hi
    return stored.start < hi and stored.end > lo
