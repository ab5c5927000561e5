"""An event's desired state: what a client app asked a managed event to be.

The API edge validates a body into a ``DesiredEvent``; the write service seals it into the
outbox (``managed_events.desired``); the outbox opens it and hands the provider its
``EventDraft``. The stored form is the JSON the outbox has always kept, so rows written
before this type existed (with fewer keys) still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, cast

from providers.model import ConferenceLink, EventDraft, Person, When
from providers.recurrence import RecurrenceRule

Transparency = Literal["opaque", "transparent"]


@dataclass(frozen=True, slots=True)
class Invitee:
    email: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredEvent:
    summary: str
    start: When
    end: When
    start_tzid: str = "Etc/UTC"
    end_tzid: str = "Etc/UTC"
    description: str = ""
    location: str = ""
    transparency: Transparency = "opaque"
    attendees: tuple[Invitee, ...] = ()
    url: str | None = None
    private: bool = False
    reminders: tuple[int, ...] = ()  # minutes before the start
    conferencing: bool = False  # the calendar's own video conference, where it has one
    recurrence: RecurrenceRule | None = None  # a series; None: a single event
    conference_link: ConferenceLink | None = None  # the app's own link (explicit)

    def to_stored(self) -> dict[str, Any]:
        """The JSON form sealed into the outbox (keys and shapes as they have always been)."""
        return {
            "summary": self.summary, "description": self.description,
            "location": self.location,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "start_tzid": self.start_tzid, "end_tzid": self.end_tzid,
            "transparency": self.transparency,
            "attendees": [{"email": a.email, "display_name": a.display_name}
                          for a in self.attendees],
            "url": self.url, "private": self.private,
            "reminders": list(self.reminders), "conferencing": self.conferencing,
            # Only when set, so a single event's stored form is what it always was.
            **({"recurrence": {"rules": [self.recurrence.to_stored()]}}
               if self.recurrence else {}),
            **({"conference_link": {"join_url": self.conference_link.join_url,
                                    "description": self.conference_link.description}}
               if self.conference_link else {}),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> DesiredEvent:
        """The stored form back; keys an older row lacks take their defaults."""
        return cls(
            summary=stored["summary"], start=_when(stored["start"]), end=_when(stored["end"]),
            start_tzid=stored.get("start_tzid") or "Etc/UTC",
            end_tzid=stored.get("end_tzid") or "Etc/UTC",
            description=stored.get("description") or "",
            location=stored.get("location") or "",
            transparency=cast(Transparency, stored.get("transparency") or "opaque"),
            attendees=tuple(Invitee(a["email"], a.get("display_name"))
                            for a in stored.get("attendees", [])),
            url=stored.get("url"), private=bool(stored.get("private")),
            reminders=tuple(stored.get("reminders", [])),
            conferencing=bool(stored.get("conferencing")),
            recurrence=_recurrence(stored.get("recurrence")),
            conference_link=_conference_link(stored.get("conference_link")))

    def draft(self, managed_key: str) -> EventDraft:
        """What the provider is asked to make, named by the managed key."""
        return EventDraft(
            managed_key=managed_key, summary=self.summary, start=self.start, end=self.end,
            start_tzid=self.start_tzid, end_tzid=self.end_tzid,
            description=self.description, location=self.location,
            transparency=self.transparency,
            attendees=tuple(Person(a.email, a.display_name) for a in self.attendees),
            url=self.url, private=self.private, reminders_minutes=self.reminders,
            conferencing=self.conferencing, recurrence=self.recurrence,
            conference_link=self.conference_link)


def _recurrence(stored: Any) -> RecurrenceRule | None:
    rules = (stored or {}).get("rules") or []
    return RecurrenceRule.from_stored(rules[0]) if rules else None


def _conference_link(stored: Any) -> ConferenceLink | None:
    if not stored:
        return None
    return ConferenceLink(stored["join_url"], stored["description"])


def _when(value: str) -> When:
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
