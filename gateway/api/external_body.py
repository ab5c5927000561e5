"""The body of ``POST /v1/calendars/{id}/events`` with ``event_uid`` (API.md s6.3) as a patch.

An external event is not the app's: only the fields the body sends change upstream, and
the rest stays as its owner made it. ``start`` and ``end`` move together. Fields that
would take the event over (attendees, reminders, conferencing, url, privacy) are not
offered for external events and are refused rather than silently dropped.
"""

from __future__ import annotations

from datetime import datetime

from providers.model import EventPatch

from .event_body import MAX_DESCRIPTION, MAX_SUMMARY, TRANSPARENCY, _location, _when
from .params import InvalidParam, Params

NOT_OFFERED = ("attendees", "reminders", "conferencing", "url", "event_private", "color",
               "recurrence")


def event_patch(params: Params) -> EventPatch:
    """Validate the fields sent; at least one must change something."""
    for name in NOT_OFFERED:
        if params.raw(name) is not None:
            raise InvalidParam(name, "not_supported",
                               f"{name} cannot be changed on an event the app did not create")
    summary = _text(params, "summary", MAX_SUMMARY, allow_empty=False)
    description = _text(params, "description", MAX_DESCRIPTION, allow_empty=True)
    location = None if params.raw("location") is None else _place(params.raw("location"))
    transparency = params.text("transparency")
    if transparency is not None and transparency not in TRANSPARENCY:
        raise InvalidParam("transparency", "invalid", "transparency is opaque or transparent")
    times: dict[str, object] = {}
    if params.raw("start") is not None or params.raw("end") is not None:
        times = _times(params)
    patch = EventPatch(summary=summary, description=description, location=location,
                       transparency="transparent" if transparency == "transparent"
                       else ("opaque" if transparency else None), **times)  # type: ignore[arg-type]
    if patch == EventPatch():
        raise InvalidParam("summary", "required",
                           "send at least one field to change (summary, description, "
                           "location, start and end, transparency)")
    return patch


def _text(params: Params, name: str, limit: int, *, allow_empty: bool) -> str | None:
    value = params.raw(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParam(name, "invalid", f"{name} must be a string")
    if not value.strip() and not allow_empty:
        raise InvalidParam(name, "required", f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidParam(name, "too_long", f"{name} is over {limit} characters")
    return value


def _times(params: Params) -> dict[str, object]:
    default_tzid = params.tzid() if params.raw("tzid") else "Etc/UTC"
    start, start_tzid = _when(params, "start", default_tzid)
    end, end_tzid = _when(params, "end", default_tzid)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise InvalidParam("end", "mismatched_types", "start and end must both be dates or times")
    if end <= start:
        raise InvalidParam("end", "end_before_start", "end must be after start")
    return {"start": start, "end": end, "start_tzid": start_tzid, "end_tzid": end_tzid}


def _place(value: object) -> str:
    """The location's text; coordinates are not written to another's event (a 422)."""
    text, geo = _location(value)
    if geo is not None:
        raise InvalidParam("location", "not_supported", "location.lat and location.long "
                           "cannot be changed on an event the app did not create")
    return text
