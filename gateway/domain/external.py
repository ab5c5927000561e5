"""Writes to external events (API.md s6.3): the fields an app sent, as a patch.

The API edge validates a body into an :class:`~providers.model.EventPatch`; the write
service seals its JSON form into ``external_writes.patch`` (bound to the calendar and the
event's ``event_uid``); the worker opens it and hands the provider the patch. A patch
queued while an earlier one is still pending is merged into it, field by field, the newer
value winning, so the upstream gets every field the app sent, in one write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, cast

from providers.model import EventPatch, Transparency, When

PERMISSION_SANDBOX = "sandbox"
PERMISSION_UNRESTRICTED = "unrestricted"
_TEXT = ("summary", "description", "location", "transparency")


def external_context(calendar_id: str, event_uid: str) -> str:
    """What an external write's sealed patch is bound to."""
    return f"external|{calendar_id}|{event_uid}"


def patch_to_stored(patch: EventPatch) -> dict[str, Any]:
    """The JSON form sealed into the outbox: only the fields the patch sets."""
    stored: dict[str, Any] = {k: getattr(patch, k) for k in _TEXT
                              if getattr(patch, k) is not None}
    if patch.start is not None and patch.end is not None:
        stored |= {"start": patch.start.isoformat(), "end": patch.end.isoformat(),
                   "start_tzid": patch.start_tzid, "end_tzid": patch.end_tzid}
    return stored


def patch_from_stored(stored: Mapping[str, Any]) -> EventPatch:
    times: dict[str, Any] = {}
    if "start" in stored:
        times = {"start": _when(stored["start"]), "end": _when(stored["end"]),
                 "start_tzid": stored["start_tzid"], "end_tzid": stored["end_tzid"]}
    return EventPatch(summary=stored.get("summary"), description=stored.get("description"),
                      location=stored.get("location"),
                      transparency=cast(Transparency | None, stored.get("transparency")),
                      **times)


def merge_stored(older: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
    """A pending patch with a newer one laid over it (times move as one)."""
    return {**older, **newer}


def _when(value: str) -> When:
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
