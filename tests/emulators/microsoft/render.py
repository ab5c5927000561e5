"""Stored events and calendars as Graph's JSON: start/end in the output zone (``Prefer:
outlook.timezone``), ``@odata.etag`` from the changeKey, extended properties only through
``$expand``, and no body for a token holding only ``Calendars.ReadBasic``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .state import Calendar, StoredEvent, User
from .timeutil import write_when, zone

_EXPAND_ID = re.compile(r"id\s+eq\s+'([^']+)'", re.IGNORECASE)
_ANY_FILTER = re.compile(r"singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+"
                         r"'([^']+)'\s+and\s+\1/value\s+eq\s+'([^']*)'\s*\)", re.IGNORECASE)
BASIC_HIDDEN = ("body", "bodyPreview", "attachments")


def expanded_ids(query: dict[str, str]) -> set[str] | None:
    """Extended property ids asked for by ``$expand=singleValueExtendedProperties($filter=
    id eq '...')``; None when not expanded."""
    expand = query.get("$expand", "")
    if "singleValueExtendedProperties" not in expand:
        return None
    return set(_EXPAND_ID.findall(expand))


def extended_filter(query: dict[str, str]) -> tuple[str, str] | None:
    """``$filter=singleValueExtendedProperties/Any(ep: ep/id eq 'X' and ep/value eq 'Y')``"""
    found = _ANY_FILTER.search(query.get("$filter", ""))
    return (found.group(2), found.group(3)) if found else None


def _when(moment: datetime, all_day: bool, original_tz: str, tz: str) -> dict[str, str]:
    if all_day:  # all-day dates float: midnight whatever the output zone
        local = moment.astimezone(zone(original_tz))
        return {"dateTime": local.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": tz}
    return write_when(moment, tz)


def event_json(stored: StoredEvent, tz: str, *, basic: bool = False,
               expand: set[str] | None = None) -> dict[str, Any]:
    resource = stored.resource
    out: dict[str, Any] = {"@odata.etag": f'W/"{resource["changeKey"]}"'}
    out.update({k: v for k, v in resource.items() if not (basic and k in BASIC_HIDDEN)})
    all_day = bool(resource.get("isAllDay"))
    out["start"] = _when(stored.start, all_day, resource.get("originalStartTimeZone") or "UTC",
                         tz)
    out["end"] = _when(stored.end, all_day, resource.get("originalEndTimeZone") or "UTC", tz)
    out.setdefault("seriesMasterId", None)
    out.setdefault("recurrence", None)
    location = out.get("location") or {}
    out["location"] = {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                       **location}
    if not basic:
        body = out.get("body") or {}
        out["bodyPreview"] = str(body.get("content", ""))[:255]
    if expand is not None and not basic:
        out["singleValueExtendedProperties"] = [
            {"id": k, "value": v} for k, v in stored.extended.items() if k in expand]
    return out


def calendar_json(calendar: Calendar, user: User) -> dict[str, Any]:
    providers = ["skypeForConsumer"] if user.personal else ["teamsForBusiness"]
    return {"id": calendar.id, "name": calendar.name, "color": calendar.color,
            "hexColor": calendar.hex_color, "groupClassId": "0006f0b7-0000-0000-c000-"
                                                            "000000000046",
            "isDefaultCalendar": calendar.is_default, "changeKey": calendar.change_key,
            "canShare": calendar.can_edit, "canViewPrivateItems": calendar.can_edit,
            "canEdit": calendar.can_edit, "isRemovable": not calendar.is_default,
            "isTallyingResponses": True, "allowedOnlineMeetingProviders": providers,
            "defaultOnlineMeetingProvider": providers[0],
            "owner": {"name": calendar.owner_name, "address": calendar.owner_address}}


def user_json(user: User) -> dict[str, Any]:
    given, _, surname = user.name.partition(" ")
    return {"businessPhones": [], "displayName": user.name, "givenName": given,
            "jobTitle": None, "mail": user.email, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": surname or None,
            "userPrincipalName": user.email, "id": user.oid}
