"""An event's desired state: what a client app asked a managed event to be.

The API edge validates a body into an ``EventUpsert``; the write service merges it over the
event's stored state (Cronofy's upsert changes only the fields a request carries) into a
``DesiredEvent`` and seals that into the outbox (``managed_events.desired``); the outbox
opens it and hands the provider its ``EventDraft``. The stored form is the JSON the outbox
has always kept, plus newer keys, so rows written before (with fewer keys) still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal, cast

from providers.model import ConferenceLink, EventDraft, ExtendedTransparency, Person, When
from providers.recurrence import RecurrenceRule

Transparency = Literal["opaque", "transparent"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A per-event webhook (Cronofy's upsert ``subscriptions``): where to POST, and which
    interactions (``conferencing_assigned``) are sent there."""

    uri: str
    interactions: tuple[str, ...]
    type: str = "webhook"

    def to_stored(self) -> dict[str, Any]:
        return {"type": self.type, "uri": self.uri,
                "interactions": [{"type": t} for t in self.interactions]}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Subscription:
        return cls(uri=stored["uri"], type=stored.get("type") or "webhook",
                   interactions=tuple(i["type"] for i in stored.get("interactions") or ()))


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
    # Minutes before the start, in priority order; None: the calendar's defaults.
    reminders: tuple[int, ...] | None = None
    conferencing: bool = False  # the calendar's own video conference, where it has one
    recurrence: RecurrenceRule | None = None  # a series; None: a single event
    reminders_create_only: bool = False
    extended_transparency: ExtendedTransparency | None = None
    color: str | None = None
    geo: tuple[str, str] | None = None  # (lat, long) strings, as Cronofy takes them
    # People taken off the event by writes not yet applied upstream: they are told.
    removed: tuple[Invitee, ...] = ()
    conference_link: ConferenceLink | None = None  # the app's own link (explicit)
    subscriptions: tuple[Subscription, ...] = ()  # per-event webhooks (not sent upstream)

    def to_stored(self) -> dict[str, Any]:
        """The JSON form sealed into the outbox: the keys older releases read and wrote,
        plus a newer key only when its field is set, so a row without the newer fields is
        the same as ever, and an older release still applies one with them."""
        stored = {
            "summary": self.summary, "description": self.description,
            "location": self.location,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "start_tzid": self.start_tzid, "end_tzid": self.end_tzid,
            "transparency": self.transparency,
            "attendees": [{"email": a.email, "display_name": a.display_name}
                          for a in self.attendees],
            "url": self.url, "private": self.private,
            "reminders": list(self.reminders or ()), "conferencing": self.conferencing,
            # Only when set, so a single event's stored form is what it always was.
            **({"recurrence": {"rules": [self.recurrence.to_stored()]}}
               if self.recurrence else {}),
            **({"conference_link": {"join_url": self.conference_link.join_url,
                                    "description": self.conference_link.description}}
               if self.conference_link else {}),
        }
        newer: dict[str, Any] = {
            "no_reminders": self.reminders == (),  # [] above is "the calendar's defaults"
            "reminders_create_only": self.reminders_create_only,
            "extended_transparency": self.extended_transparency, "color": self.color,
            "geo": list(self.geo) if self.geo else None,
            "removed": [{"email": a.email, "display_name": a.display_name}
                        for a in self.removed],
            "subscriptions": [sub.to_stored() for sub in self.subscriptions]}
        return stored | {k: v for k, v in newer.items() if v}

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
            reminders=_stored_reminders(stored),
            conferencing=bool(stored.get("conferencing")),
            recurrence=_recurrence(stored.get("recurrence")),
            reminders_create_only=bool(stored.get("reminders_create_only")),
            extended_transparency=stored.get("extended_transparency"),
            color=stored.get("color"),
            geo=(str(geo[0]), str(geo[1])) if (geo := stored.get("geo")) else None,
            removed=tuple(Invitee(a["email"], a.get("display_name"))
                          for a in stored.get("removed") or []),
            conference_link=_conference_link(stored.get("conference_link")),
            subscriptions=tuple(Subscription.from_stored(sub)
                                for sub in stored.get("subscriptions") or ()))

    def merge(self, current: DesiredEvent | None, *, pending: bool = False) -> DesiredEvent:
        """As a write, a whole desired state replaces the stored one (tests and internal
        callers; the API's upserts are :class:`EventUpsert`)."""
        return self

    def gated_fields(self) -> set[str]:
        """The rows of ``providers.model.GATED_WRITE_FIELDS`` this state needs."""
        return _gated(self.color, self.url, self.geo, self.extended_transparency)

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
            reminders_create_only=self.reminders_create_only,
            extended_transparency=self.extended_transparency, color=self.color, geo=self.geo,
            removed=tuple(Person(a.email, a.display_name) for a in self.removed),
            conference_link=self.conference_link)


def _gated(color: str | None, url: str | None, geo: tuple[str, str] | None,
           extended: str | None) -> set[str]:
    needed = {name for name, used in (("color", color), ("url", url),
                                      ("location.geo", geo)) if used}
    if extended not in (None, "opaque", "transparent"):
        needed.add(f"extended_transparency.{extended}")
    return needed


def _stored_reminders(stored: Mapping[str, Any]) -> tuple[int, ...] | None:
    """``[]`` has always meant the calendar's defaults; ``no_reminders`` says none at all."""
    if stored.get("no_reminders"):
        return ()
    return tuple(int(m) for m in stored.get("reminders") or ()) or None


@dataclass(frozen=True, slots=True)
class EventUpsert:
    """One upsert body, validated: what it sets, and which optional fields it carried.

    Cronofy's upsert of an existing (calendar_id, event_id) changes only the fields the
    request carries; on a create the others take their defaults. ``given`` names the
    optional fields present in the body (``url`` explicitly ``null`` is given: it clears).
    """

    summary: str
    start: When
    end: When
    start_tzid: str = "Etc/UTC"
    end_tzid: str = "Etc/UTC"
    given: frozenset[str] = frozenset()
    description: str = ""
    location: str = ""
    geo: tuple[str, str] | None = None
    url: str | None = None
    transparency: Transparency = "opaque"
    extended_transparency: ExtendedTransparency | None = None
    private: bool = False
    reminders: tuple[int, ...] = ()
    reminders_create_only: bool = False
    color: str | None = None
    conferencing: bool = False
    conference_link: ConferenceLink | None = None  # the app's own link (explicit)
    recurrence: RecurrenceRule | None = None
    invite: tuple[Invitee, ...] = ()
    remove: frozenset[str] = field(default_factory=frozenset)  # lower-cased addresses
    subscriptions: tuple[Subscription, ...] = ()  # given: replaces the list; []: clears

    def gated_fields(self) -> set[str]:
        """The rows of ``providers.model.GATED_WRITE_FIELDS`` this write needs."""
        return _gated(self.color, self.url, self.geo, self.extended_transparency)

    def merge(self, current: DesiredEvent | None, *, pending: bool = False) -> DesiredEvent:
        """The desired state after this write: over ``current`` (the stored state of the
        event, None to create it) only the given fields change. ``pending``: ``current``
        is not yet applied upstream, so the guests it removes are still to be told."""
        base = current or DesiredEvent(self.summary, self.start, self.end)
        merged = replace(base, summary=self.summary, start=self.start, end=self.end,
                         start_tzid=self.start_tzid, end_tzid=self.end_tzid,
                         **self._changes(current))
        attendees, removed = self._people(current, pending)
        return replace(merged, attendees=attendees, removed=removed)

    def _changes(self, current: DesiredEvent | None) -> dict[str, Any]:
        given = self.given
        changes: dict[str, Any] = {}
        if "description" in given:
            changes["description"] = self.description
        if "location" in given:
            changes |= {"location": self.location, "geo": self.geo}
        if "url" in given:
            changes["url"] = self.url
        if "event_private" in given:
            changes["private"] = self.private
        if "color" in given:
            changes["color"] = self.color
        if "conferencing" in given:
            changes |= {"conferencing": self.conferencing,
                        "conference_link": self.conference_link}
        if "recurrence" in given:
            changes["recurrence"] = self.recurrence
        if "subscriptions" in given:
            changes["subscriptions"] = self.subscriptions
        if "extended_transparency" in given or "transparency" in given:
            changes |= {"transparency": self.transparency,
                        "extended_transparency": self.extended_transparency}
        # reminders_create_only belongs to the request: reminders given with it set them
        # on a create only, and later writes leave the event's reminders to its owner.
        if "reminders" in given and not (current is not None and self.reminders_create_only):
            changes |= {"reminders": self.reminders,
                        "reminders_create_only": self.reminders_create_only}
        return changes

    def _people(self, current: DesiredEvent | None, pending: bool
                ) -> tuple[tuple[Invitee, ...], tuple[Invitee, ...]]:
        """Attendees after ``invite`` (added, or their names updated) and ``remove``; and
        who is to be told they were taken off (with what earlier pending writes took off,
        unless invited again)."""
        before = current.attendees if current else ()
        invited = {p.email.lower(): p for p in self.invite if p.email.lower() not in self.remove}
        kept: list[Invitee] = []
        for person in before:
            key = person.email.lower()
            if key in self.remove:
                continue
            new = invited.pop(key, None)
            kept.append(Invitee(person.email, new.display_name or person.display_name)
                        if new else person)
        kept.extend(invited.values())
        attendees = tuple(kept)
        told = [p for p in before if p.email.lower() in self.remove]
        if pending and current is not None:
            told = [*current.removed, *told]
        here = {p.email.lower() for p in attendees}
        removed = tuple({p.email.lower(): p for p in told if p.email.lower() not in here
                         }.values())
        return attendees, removed


def _recurrence(stored: Any) -> RecurrenceRule | None:
    rules = (stored or {}).get("rules") or []
    return RecurrenceRule.from_stored(rules[0]) if rules else None


def _conference_link(stored: Any) -> ConferenceLink | None:
    if not stored:
        return None
    return ConferenceLink(stored["join_url"], stored["description"])


def _when(value: str) -> When:
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
