"""The account area: /v1/userinfo, /v1/account, /v1/profiles, /v1/calendars (API.md s3, s4)."""

from __future__ import annotations

from .schema import (
    BEARER,
    Json,
    array,
    body,
    errors,
    nullable,
    obj,
    path,
    ref,
    reply,
    string,
)

PROFILE = obj({
    "provider_name": string("a provider of the registry, e.g. caldav, apple, ics"),
    "provider_service": string(),
    "profile_id": string(pattern="^pro_"),
    "profile_name": string(),
    "profile_connected": {"type": "boolean"},
    "profile_initial_sync_required": {"type": "boolean"},
    "profile_relink_url": nullable(string(
        "only while disconnected: opens Calgate's page to sign in to the same account "
        "again, in any browser; it expires, and stops working once reconnected",
        format="uri")),
}, ("provider_name", "provider_service", "profile_id", "profile_name", "profile_connected",
    "profile_initial_sync_required"))

CALENDAR = obj({
    "provider_name": string(), "profile_id": string(), "profile_name": string(),
    "calendar_id": string(pattern="^cal_"), "calendar_name": string(),
    "calendar_readonly": {"type": "boolean"}, "calendar_deleted": {"type": "boolean"},
    "calendar_primary": {"type": "boolean"},
    "calendar_integrated_conferencing_available": {"type": "boolean"},
    "calendar_attachments_available": {"type": "boolean"},
    "permission_level": string(enum=["sandbox", "unrestricted"]),
    "calendar_color": nullable(string()),
}, ("provider_name", "profile_id", "profile_name", "calendar_id", "calendar_name",
    "calendar_readonly", "calendar_deleted", "calendar_primary", "permission_level"))

PROFILE_CALENDAR = obj({
    "calendar_id": string(pattern="^cal_"), "calendar_name": string(),
    "calendar_readonly": {"type": "boolean"}, "calendar_deleted": {"type": "boolean"},
    "calendar_primary": {"type": "boolean"},
    "calendar_integrated_conferencing_available": {"type": "boolean"},
    "calendar_attachments_available": {"type": "boolean"},
    "permission_level": string(enum=["sandbox", "unrestricted"]),
}, ("calendar_id", "calendar_name", "calendar_readonly", "calendar_deleted",
    "calendar_primary"))

LINK_TOKEN = obj({"link_token": string("pass as link_token to /oauth/authorize; single "
                                       "use, for this client app, valid 10 minutes")},
                 ("link_token",))

USERINFO = obj({
    "sub": string(pattern="^acc_"),
    "email": nullable(string(description="only with read_account")),
    "name": nullable(string(description="only with read_account")),
    "zoneinfo": nullable(string(description="only with read_account")),
    "cronofy.type": string(enum=["account"]),
    "cronofy.data": obj({
        "authorization": obj({"scope": string(), "status": string(enum=["active"])},
                             ("scope", "status")),
        "profiles": array({"allOf": [ref("Profile"), obj({
            "profile_calendars": array(ref("ProfileCalendar"))}, ("profile_calendars",))]}),
        "conferencing_profiles": array({"type": "object"}),
    }, ("authorization", "profiles", "conferencing_profiles")),
}, ("sub", "cronofy.type", "cronofy.data"))

ACCOUNT = obj({"account": obj({
    "account_id": string(pattern="^acc_"), "email": nullable(string()),
    "name": nullable(string()), "scope": string(), "default_tzid": nullable(string()),
}, ("account_id", "email", "name", "scope", "default_tzid")),
    "sub": string(pattern="^acc_")}, ("account", "sub"))

CREATE_CALENDAR = obj({
    "profile_id": string("the profile to create the calendar in", minLength=1),
    "name": string("the new calendar's name", minLength=1),
    "color": string("a colour such as #49BED8 (where the provider keeps one)"),
}, ("profile_id", "name"))

SCHEMAS: dict[str, Json] = {"Profile": PROFILE, "Calendar": CALENDAR,
                            "ProfileCalendar": PROFILE_CALENDAR}


def _get(summary: str, scope: str | None, schema: Json, *statuses: int) -> Json:
    needs = f" Needs the `{scope}` scope." if scope else ""
    return {"summary": summary, "description": summary + needs, "tags": ["Account"],
            "security": BEARER, "responses": {
                "200": reply("OK", schema), **errors(*statuses)}}


PATHS: dict[str, Json] = {
    "/v1/userinfo": {"get": _get(
        "The account and its profiles, OpenID Connect style (name and email need "
        "read_account).", None, USERINFO, 404) | {"operationId": "userinfo"}},
    "/v1/account": {"get": _get("The account of the token.", "read_account", ACCOUNT,
                                403, 404) | {"operationId": "account"}},
    "/v1/profiles": {"get": _get("The account's linked calendar profiles.", None, obj(
        {"profiles": array(ref("Profile"))}, ("profiles",)), 404)
        | {"operationId": "listProfiles"}},
    "/v1/profiles/{profile_id}/revoke": {"post": {
        "operationId": "revokeProfile", "tags": ["Account"], "security": BEARER,
        "summary": "Unlink a profile: its credentials, mirror and channels go; revoking the "
                   "last one ends the authorization.",
        "parameters": [path("profile_id", "a profile of this account")],
        "responses": {"202": reply("Revoked."), **errors(404)}}},
    "/v1/link_tokens": {"post": {
        "operationId": "createLinkToken", "tags": ["Account"], "security": BEARER,
        "summary": "A link token: the next calendar linked with it (link_token on "
                   "/oauth/authorize, from any device) joins this account.",
        "description": "Any valid access token of the account may mint one. The token is "
                       "single use, bound to this client app and valid for 10 minutes.",
        "responses": {"200": reply("OK", LINK_TOKEN), **errors()}}},
    "/v1/calendars": {
        "get": _get("The account's calendars, from the mirror.", "list_calendars", obj(
            {"sub": string(pattern="^acc_"), "calendars": array(ref("Calendar"))},
            ("sub", "calendars")), 403) | {"operationId": "listCalendars"},
        "post": {
            "operationId": "createCalendar", "tags": ["Account"], "security": BEARER,
            "summary": "Create a calendar upstream in one of the account's profiles.",
            "description": "Needs `create_calendar`. A duplicate name is 422 "
                           "`errors.duplicate_calendar_name`; a profile that must be "
                           "re-linked is 423.",
            "requestBody": body(CREATE_CALENDAR),
            "responses": {"200": reply("Created.", obj({"calendar": ref("Calendar")},
                                                         ("calendar",))),
                          "423": reply("The profile must be re-linked.", ref("Error")),
                          **errors(403, 404, 422)}}},
}
