"""Event objects: creating, patching and deleting them (masters, singles and exceptions),
rendering generated instances of a series, and the listings events.list returns (full,
windowed and expanded, or incremental since a sync token). Callers hold ``World.lock``."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import ApiError, gone, invalid, not_found, precondition_failed
from .state import CalendarRecord, Stored, new_id, now
from .timeutil import When, as_utc, event_zone, occurrences, read_when, stamp, suffix, write_when

READ_ONLY = frozenset({"kind", "etag", "created", "updated", "htmlLink", "hangoutLink",
                       "creator", "recurringEventId", "originalStartTime", "iCalUID",
                       "privateCopy", "locked"})
BUSY_FIELDS = ("kind", "etag", "id", "status", "updated", "start", "end", "transparency",
               "recurringEventId", "originalStartTime", "eventType")
TOMBSTONE_FIELDS = ("kind", "etag", "id", "status", "updated", "recurringEventId",
                    "originalStartTime")
INCREMENTAL_INSTANCES = 730  # how far a changed series is expanded in an incremental listing
MEET = "https://meet.google.com/"


def _etag(seq: int) -> str:
    return f'"{int(now().timestamp() * 1000)}{seq:06d}"'


def _valid_id(event_id: str) -> bool:
    return 5 <= len(event_id) <= 1024 and all(c in "0123456789abcdefghijklmnopqrstuv"
                                              for c in event_id)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """PATCH semantics: objects merge, arrays and scalars replace, null clears."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def times(event: dict[str, Any], calendar_tz: str) -> tuple[When, When]:
    start = read_when(event.get("start"), "start", None)
    end = read_when(event.get("end"), "end", None)
    return start, end


class Events:
    """Operations on one calendar's events."""

    def __init__(self, calendar: CalendarRecord, changed: Any) -> None:
        self.cal = calendar
        self.changed = changed  # called with the calendar id after each change

    # -- validation and normalisation -----------------------------------------------------

    def _normalise(self, event: dict[str, Any]) -> None:
        start, end = times(event, self.cal.tz)
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise invalid("Start and end times must either both be date or both be "
                          "dateTime.")
        if as_utc(end, self.cal.tz) <= as_utc(start, self.cal.tz):
            raise invalid("The specified time range is empty.", reason="timeRangeEmpty")
        recurring = bool(event.get("recurrence")) and "recurringEventId" not in event
        for key, value in (("start", start), ("end", end)):
            tz = (event.get(key) or {}).get("timeZone")
            if recurring and isinstance(value, datetime) and not tz:
                raise invalid("Missing time zone definition for start time.",
                              reason="timeZoneNotSpecified")
            event[key] = write_when(value, tz or (None if not isinstance(value, datetime)
                                                  else self.cal.tz))
            if not tz and isinstance(value, datetime):
                event[key].pop("timeZone", None)
        if recurring:
            occurrences(event["recurrence"], start, end, event_zone(event, self.cal.tz),
                        self.cal.tz, None, 1, as_utc(start, self.cal.tz) + timedelta(days=1))
        for attendee in event.get("attendees") or []:
            if not attendee.get("email"):
                raise invalid("Missing attendee email.", reason="required")
            attendee["email"] = attendee["email"].lower()
            organizer = (event.get("organizer") or {}).get("email", "").lower()
            if attendee["email"] == organizer:
                attendee["organizer"] = True
                attendee.setdefault("responseStatus", "accepted")
            attendee.setdefault("responseStatus", "needsAction")

    def _save(self, event: dict[str, Any]) -> dict[str, Any]:
        seq = self.cal.bump()
        event["updated"] = stamp(now())
        event["etag"] = _etag(seq)
        self.cal.events[event["id"]] = Stored(event, seq)
        self.changed(self.cal.id)
        return event

    # -- conference data ------------------------------------------------------------------

    @staticmethod
    def apply_conference(event: dict[str, Any], requested: Any, version: int) -> None:
        """conferenceData as written (``conferenceDataVersion`` >= 1 only; Google ignores it
        otherwise): a createRequest makes a Meet, the same requestId again is a no-op."""
        if version < 1 or requested is ...:
            return
        if requested is None:
            event.pop("conferenceData", None)
            event.pop("hangoutLink", None)
            return
        create = requested.get("createRequest")
        if not create:
            event["conferenceData"] = copy.deepcopy(requested)
            return
        current = (event.get("conferenceData") or {}).get("createRequest", {})
        if current.get("requestId") == create.get("requestId"):
            return
        kind = (create.get("conferenceSolutionKey") or {}).get("type")
        if kind != "hangoutsMeet":
            raise invalid("Invalid conference type value.")
        if not create.get("requestId"):
            raise invalid("Missing conference request id.", reason="required")
        digest = hashlib.sha256(create["requestId"].encode()).hexdigest()
        letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:10])
        code = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
        event["conferenceData"] = {
            "createRequest": {"requestId": create["requestId"],
                              "conferenceSolutionKey": {"type": kind},
                              "status": {"statusCode": "success"}},
            "entryPoints": [{"entryPointType": "video", "uri": MEET + code,
                             "label": f"meet.google.com/{code}"}],
            "conferenceSolution": {"key": {"type": kind}, "name": "Google Meet"},
            "conferenceId": code}
        event["hangoutLink"] = MEET + code

    # -- create, change, delete -----------------------------------------------------------

    def insert(self, body: dict[str, Any], actor: str, *, any_id: bool = False,
               conference_version: int = 0) -> dict[str, Any]:
        event_id = body.get("id") or new_id()
        if not any_id and not _valid_id(event_id):
            raise invalid("Invalid resource id value.")
        if event_id in self.cal.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        event = {k: copy.deepcopy(v) for k, v in body.items()
                 if k not in READ_ONLY and k != "conferenceData"}
        stamp_now = stamp(now())
        event.update(kind="calendar#event", id=event_id, created=stamp_now,
                     status=body.get("status") or "confirmed",
                     htmlLink=f"https://www.google.com/calendar/event?eid={event_id}",
                     iCalUID=body.get("iCalUID") or f"{event_id}@google.com",
                     creator={"email": actor},
                     eventType=body.get("eventType") or "default")
        event.setdefault("organizer", {"email": self.cal.id} if self.cal.id == self.cal.owner
                         else {"email": self.cal.id, "displayName": self.cal.summary})
        event.setdefault("sequence", 0)
        event.setdefault("reminders", {"useDefault": True})
        self._normalise(event)
        self.apply_conference(event, body.get("conferenceData", ...), conference_version)
        return self._save(event)

    def _materialise(self, event_id: str) -> dict[str, Any] | None:
        """The stored object, or a new exception copied from a generated instance."""
        stored = self.cal.events.get(event_id)
        if stored is not None:
            return stored.resource
        instance = self.instance(event_id)
        if instance is None:
            return None
        return instance

    def update(self, event_id: str, body: dict[str, Any], *, replace: bool = False,
               if_match: str | None = None, conference_version: int = 0) -> dict[str, Any]:
        current = self._materialise(event_id)
        if current is None:
            raise not_found()
        if if_match and if_match != "*" and if_match != current.get("etag"):
            raise precondition_failed()
        body = {k: v for k, v in body.items() if k not in READ_ONLY and k != "id"}
        conference = body.pop("conferenceData", ...)
        event = copy.deepcopy(current)
        before = (event.get("start"), event.get("end"), event.get("recurrence"),
                  event.get("location"))
        if replace:
            for key in [k for k in event if k not in READ_ONLY | {"id", "organizer",
                                                                  "sequence"}]:
                del event[key]
            event["status"] = "confirmed"
        attendees_omitted = body.pop("attendeesOmitted", False)
        if attendees_omitted and "attendees" in body:
            self._merge_attendees(event, body.pop("attendees") or [])
        _merge(event, body)
        event.setdefault("status", "confirmed")
        self._normalise(event)
        self.apply_conference(event, conference, conference_version)
        if (event.get("start"), event.get("end"), event.get("recurrence"),
                event.get("location")) != before:
            event["sequence"] = int(event.get("sequence", 0)) + 1
        return self._save(event)

    @staticmethod
    def _merge_attendees(event: dict[str, Any], given: list[dict[str, Any]]) -> None:
        """attendeesOmitted: only the given attendees' answers change (Google's way of
        updating just one participant's response)."""
        by_email = {a["email"].lower(): a for a in event.get("attendees") or []}
        for attendee in given:
            known = by_email.get(str(attendee.get("email", "")).lower())
            if known is None:
                raise invalid("Attendee not found on the event.")
            for key in ("responseStatus", "comment", "additionalGuests"):
                if key in attendee:
                    known[key] = attendee[key]

    def delete(self, event_id: str, if_match: str | None = None) -> dict[str, Any]:
        current = self._materialise(event_id)
        if current is None:
            raise not_found()
        if current.get("status") == "cancelled":
            raise gone()
        if if_match and if_match != "*" and if_match != current.get("etag"):
            raise precondition_failed()
        event = copy.deepcopy(current)
        event["status"] = "cancelled"
        return self._save(event)

    # -- reading --------------------------------------------------------------------------

    def master_of(self, event_id: str) -> tuple[dict[str, Any], When] | None:
        master_id, _, tail = event_id.rpartition("_")
        stored = self.cal.events.get(master_id)
        if not master_id or stored is None or not stored.resource.get("recurrence"):
            return None
        master = stored.resource
        start, end = times(master, self.cal.tz)
        tz = event_zone(master, self.cal.tz)
        original: When
        try:
            if "T" in tail:
                original = datetime.strptime(tail, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            else:
                original = datetime.strptime(tail, "%Y%m%d").date()
        except ValueError:
            return None
        window = (as_utc(original, self.cal.tz), as_utc(original, self.cal.tz)
                  + timedelta(seconds=1))
        for found in occurrences(master["recurrence"], start, end, tz, self.cal.tz,
                                 window, 5, window[1]):
            if suffix(found) == tail:
                return master, found
        return None

    def instance(self, event_id: str) -> dict[str, Any] | None:
        """A generated (not stored) instance of a series by its instance id."""
        found = self.master_of(event_id)
        if found is None:
            return None
        return self.render_instance(*found)

    def render_instance(self, master: dict[str, Any], original: When) -> dict[str, Any]:
        start, end = times(master, self.cal.tz)
        tz = event_zone(master, self.cal.tz)
        if isinstance(original, datetime) and isinstance(start, datetime):
            # Same tzinfo on both sides: the shift is wall-clock time, so the end keeps
            # its local hour across a DST change.
            original = original.astimezone(start.tzinfo)
        instance = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
        instance_id = f"{master['id']}_{suffix(original)}"
        shift = original - start if isinstance(original, datetime) == isinstance(
            start, datetime) else timedelta(0)
        timed_tz = tz if isinstance(original, datetime) else None
        instance.update(id=instance_id, recurringEventId=master["id"],
                        originalStartTime=write_when(original, timed_tz),
                        start=write_when(original, timed_tz),
                        end=write_when(_shift(end, shift, original), timed_tz))
        return instance

    def get(self, event_id: str) -> dict[str, Any]:
        stored = self.cal.events.get(event_id)
        if stored is not None:
            return stored.resource
        instance = self.instance(event_id)
        if instance is None:
            raise not_found()
        return instance

    def expand(self, master: dict[str, Any], window: tuple[datetime, datetime] | None,
               include_cancelled: bool, limit: int = 100_000) -> list[dict[str, Any]]:
        """Instances of a series: exceptions where they exist, generated ones elsewhere."""
        start, end = times(master, self.cal.tz)
        tz = event_zone(master, self.cal.tz)
        horizon = now() + timedelta(days=730)
        found = occurrences(master["recurrence"], start, end, tz, self.cal.tz, window,
                            INCREMENTAL_INSTANCES if window is None else limit, horizon)
        out = []
        exceptions = self.exceptions(master["id"])
        for original in found:
            instance_id = f"{master['id']}_{suffix(original)}"
            if instance_id not in exceptions:
                out.append(self.render_instance(master, original))
        for exception in exceptions.values():
            if exception.get("status") == "cancelled" and not include_cancelled:
                continue
            if window is None or self.overlaps(exception, window):
                out.append(exception)
        return out

    def exceptions(self, master_id: str) -> dict[str, dict[str, Any]]:
        return {s.resource["id"]: s.resource for s in self.cal.events.values()
                if s.resource.get("recurringEventId") == master_id}

    def overlaps(self, event: dict[str, Any], window: tuple[datetime, datetime]) -> bool:
        start, end = times(event, self.cal.tz)
        return as_utc(start, self.cal.tz) < window[1] and as_utc(end, self.cal.tz) > window[0]


def _shift(end: When, shift: timedelta, original: When) -> When:
    if isinstance(end, datetime):
        return end + shift
    return end + timedelta(days=shift.days)
