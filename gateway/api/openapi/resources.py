"""The organisation's rooms: /v1/resources (API.md s11; Cronofy's List Resources)."""

from __future__ import annotations

from .schema import BEARER, Json, array, errors, obj, ref, reply, response_ref, string

RESOURCE = obj({
    "email": string("the room's calendar address: invite it as an attendee to book it"),
    "name": string("the room's name as the organisation's directory shows it"),
}, ("email", "name"))

_PROFILE_ERROR = {"allOf": [ref("Error"), obj({"profile_id": string(
    "the profile whose upstream answered so", pattern="^pro_")})]}

SCHEMAS: dict[str, Json] = {"Resource": RESOURCE}

DESCRIPTION = (
    "Cronofy lists resources to Enterprise Connect service accounts; Calgate lists them to "
    "an ordinary account's token with its extension scope `read_resources` (in no "
    "aggregate: `read_write` does not carry it). The rooms are asked of the upstream at "
    "each call, for every profile whose provider has a directory of the organisation's "
    "rooms (the README says which do), merged by address. Profiles of providers without "
    "rooms add nothing: an account with only those answers `{\"resources\": []}`. The "
    "upstream decides who sees its directory: a 403 `resources_forbidden` names the "
    "profile it refused (a user who is not an administrator allowed to read the "
    "organisation's rooms, an organisation whose administrator has not consented, or a "
    "profile linked before the app asked for `read_resources`).")

PATHS: dict[str, Json] = {
    "/v1/resources": {"get": {
        "operationId": "listResources", "tags": ["Account"], "security": BEARER,
        "summary": "The rooms of the account's organisation (Calgate: for an ordinary "
                   "account, with read_resources).",
        "description": DESCRIPTION,
        "responses": {
            "200": reply("OK", obj({"resources": array(ref("Resource"))}, ("resources",))),
            "403": reply("The token lacks `read_resources` (`insufficient_scope`), or the "
                         "upstream will not show this account its directory "
                         "(`resources_forbidden`, with `profile_id`).", _PROFILE_ERROR),
            "423": reply("A profile with rooms must be re-linked (`relink_required`, with "
                         "`profile_id`).", _PROFILE_ERROR),
            **errors(), "503": response_ref("Unavailable")}}},
}
