"""The Cronofy-shaped identity documents (API.md s3), built from accounts and profiles.

Privacy: name and email are shown only to tokens that carry ``read_account``.
``scope`` is the scope as granted; ``grants`` its expansion into individual scopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.registry import find_entry

from .accounts import Identity
from .relink import RelinkLinks

# The keys of a calendar that userinfo's profile_calendars carry (API.md s3.2): a
# GET /v1/calendars entry without the profile's own fields.
PROFILE_CALENDAR_KEYS = ("calendar_id", "calendar_name", "calendar_readonly",
                         "calendar_deleted", "calendar_primary",
                         "calendar_integrated_conferencing_available",
                         "calendar_attachments_available", "permission_level")


def profile_body(row: dict[str, Any], relinks: RelinkLinks | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider_name": row["provider_name"],
        "provider_service": row["provider_service"],
        "profile_id": row["id"],
        "profile_name": row["profile_name"],
        "profile_connected": bool(row["connected"]),
        "profile_initial_sync_required": bool(row["initial_sync_required"]),
    }
    if not row["connected"]:
        body["profile_relink_url"] = relinks.url(row) if relinks is not None else None
    return body


def userinfo_body(identity: Identity, subject: str, scope: Sequence[str],
                  grants: frozenset[str], calendars: Sequence[dict[str, Any]] = (),
                  relinks: RelinkLinks | None = None) -> dict[str, Any]:
    """``calendars``: the account's calendars as ``GET /v1/calendars`` lists them (given
    only to tokens with ``list_calendars``), each under its profile with the keys of
    API.md s3.2's ``profile_calendars``."""
    account = identity.account
    profiles = [profile_body(r, relinks) | {"profile_calendars": [
        {k: c[k] for k in PROFILE_CALENDAR_KEYS if k in c}
        for c in calendars if c["profile_id"] == r["id"]]} for r in identity.profiles]
    body: dict[str, Any] = {"sub": subject}
    if "read_account" in grants:
        body |= {"email": account["email"], "name": account["name"],
                 "zoneinfo": account["default_tzid"]}
    body["cronofy.type"] = "account"
    body["cronofy.data"] = {
        "authorization": {"scope": " ".join(scope), "status": "active"},
        "profiles": profiles,
        "conferencing_profiles": [],
    }
    owned = application_calendar_id(identity)
    if owned is not None:  # API.md s3.2: the application calendar variant
        body["cronofy.type"] = "application_calendar"
        body["application_calendar_id"] = owned
        body["cronofy.data"]["application_calendar"] = {"application_calendar_id": owned}
    return body


def application_calendar_id(identity: Identity) -> str | None:
    """The app's id for its application calendar, if the account is one (its profile is the
    registry's app-owned provider and is named by that id)."""
    for row in identity.profiles:
        entry = find_entry(row["provider_name"])
        if entry is not None and entry.app_owned:
            return str(row["profile_name"])
    return None


def account_body(identity: Identity, subject: str, scope: Sequence[str]) -> dict[str, Any]:
    account = identity.account
    return {
        "account": {"account_id": subject, "email": account["email"], "name": account["name"],
                    "scope": " ".join(scope), "default_tzid": account["default_tzid"]},
        "sub": subject,
    }
