"""The upsert body of ``POST /v1/calendars/{id}/events`` (API.md s6.1) as a desired state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from .params import InvalidParam, Params, find_zone, parse_date, parse_time

MAX_SUMMARY, MAX_DESCRIPTION = 1024, 4096
TRANSPARENCY = {"opaque", "transparent"}


def desired_event(params: Params) -> dict[str, Any]:
    """Validate the body; the result is what the outbox will make upstream."""
    summary = params.text("summary", required=True)
    assert summary is not None
    if len(summary) > MAX_SUMMARY:
        raise InvalidParam("summary", "too_long", f"summary is over {MAX_SUMMARY} characters")
    description = params.text("description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise InvalidParam("description", "too_long",
                           f"description is over {MAX_DESCRIPTION} characters")
    default_tzid = params.tzid() if params.raw("tzid") else "Etc/UTC"
    start, start_tzid = _when(params, "start", default_tzid)
    end, end_tzid = _when(params, "end", default_tzid)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise InvalidParam("end", "mismatched_types", "start and end must both be dates or times")
    if end <= start:
        raise InvalidParam("end", "end_before_start", "end must be after start")
    transparency = params.text("transparency") or "opaque"
    if transparency not in TRANSPARENCY:
        raise InvalidParam("transparency", "invalid", "transparency is opaque or transparent")
    return {
        "summary": summary, "description": description,
        "location": _location(params.raw("location")),
        "start": start.isoformat(), "end": end.isoformat(),
        "start_tzid": start_tzid, "end_tzid": end_tzid, "transparency": transparency,
        "attendees": _attendees(params.raw("attendees")),
        "url": params.text("url"), "private": params.flag("event_private"),
        "reminders": _reminders(params.raw("reminders")),
        "conferencing": _conferencing(params.raw("conferencing")),
    }


def _conferencing(value: Any) -> bool:
    """``{"profile_id": "default" | "integrated"}`` asks for the calendar's own video
    conferencing (a Google Meet on Google calendars; ignored where a calendar has none).
    ``explicit`` links and third-party conferencing profiles are not offered."""
    if value is None:
        return False
    if not isinstance(value, dict) or not isinstance(value.get("profile_id"), str):
        raise InvalidParam("conferencing", "invalid",
                           'conferencing is {"profile_id": "default"}')
    if value["profile_id"] not in {"default", "integrated"}:
        raise InvalidParam("conferencing", "unsupported",
                           "conferencing.profile_id must be default or integrated")
    return True


def _when(params: Params, name: str, default_tzid: str) -> tuple[date | datetime, str]:
    value = params.raw(name)
    tzid = default_tzid
    if isinstance(value, dict):
        tzid = value.get("tzid") or default_tzid
        if find_zone(tzid) is None:
            raise InvalidParam(name, "invalid_tzid", f"{name}.tzid is not a known time zone")
        value = value.get("time")
    if not isinstance(value, str) or not value.strip():
        raise InvalidParam(name, "required", f"{name} must be specified")
    try:
        if len(value.strip()) == 10:
            return parse_date(value.strip()), tzid
        return parse_time(value), tzid
    except ValueError as exc:
        raise InvalidParam(name, "invalid_time",
                           f"{name} must be a Date or a Time like 2014-08-05T14:30:00Z ({exc})"
                           ) from None


def _location(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("description") or "")
    return value if isinstance(value, str) else ""


def _attendees(value: Any) -> list[dict[str, Any]]:
    """``invite`` minus ``reject``/``remove`` (Ruby/PHP say reject, C# sends remove)."""
    if not isinstance(value, dict):
        return []
    removed = {a.get("email", "").lower() for key in ("reject", "remove")
               for a in value.get(key) or [] if isinstance(a, dict)}
    invited = []
    for person in value.get("invite") or []:
        if not isinstance(person, dict) or "@" not in str(person.get("email", "")):
            raise InvalidParam("attendees", "invalid", "each attendee needs an email address")
        if person["email"].lower() not in removed:
            invited.append({"email": person["email"], "display_name": person.get("display_name")})
    return invited


def _reminders(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    try:
        return [int(r["minutes"]) for r in value if isinstance(r, dict)]
    except (KeyError, TypeError, ValueError):
        raise InvalidParam("reminders", "invalid", "reminders are [{\"minutes\": n}]") from None
