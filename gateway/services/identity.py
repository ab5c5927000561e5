"""The Cronofy-shaped identity documents (API.md s3), built from accounts and profiles.

Privacy: name and email are shown only to tokens that carry ``read_account``.
``scope`` is the scope as granted; ``grants`` its expansion into individual scopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def profile_calendars(identity: Identity, profile_id: str) -> list[dict[str, Any]]:
    return [{k: c[k] for k in PROFILE_CALENDAR_KEYS if k in c} for c in identity.calendars
            if c["profile_id"] == profile_id]


def userinfo_body(identity: Identity, subject: str, scope: Sequence[str],
                  grants: frozenset[str], relinks: RelinkLinks | None = None) -> dict[str, Any]:
    """``profile_calendars`` only for tokens that may list calendars (``list_calendars``)."""
    account = identity.account
    listed = "list_calendars" in grants
    profiles = [profile_body(r, relinks) | {"profile_calendars": profile_calendars(
        identity, r["id"]) if listed else []} for r in identity.profiles]
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
    return body


def account_body(identity: Identity, subject: str, scope: Sequence[str]) -> dict[str, Any]:
    account = identity.account
    return {
        "account": {"account_id": subject, "email": account["email"], "name": account["name"],
                    "scope": " ".join(scope), "default_tzid": account["default_tzid"]},
        "sub": subject,
    }
