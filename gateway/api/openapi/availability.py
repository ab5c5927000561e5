"""Availability: POST /v1/availability (API.md s8.1; Cronofy's Availability Query)."""

from __future__ import annotations

from .schema import (
    BEARER,
    TIME_PATTERN,
    Json,
    array,
    body,
    errors,
    obj,
    ref,
    reply,
    string,
)

CLIENT_SECRET: list[Json] = [{"clientSecret": []}]
TIME = string("a Time: 2014-08-05T14:30:00Z", pattern=TIME_PATTERN)
PERIOD = obj({"start": TIME, "end": TIME}, ("start", "end"))


def _minutes(low: int, high: int) -> Json:
    return obj({"minutes": {"type": "integer", "minimum": low, "maximum": high}},
               ("minutes",))


_BUFFER_SIDE: Json = {"anyOf": [_minutes(0, 1440), obj({
    "minimum": _minutes(0, 1440), "maximum": _minutes(0, 1440)})]}
MEMBER = obj({
    "sub": string("an account of the app (acc_…)", minLength=1, maxLength=64),
    "calendar_ids": array(string(minLength=1, maxLength=64), maxItems=50),
    "available_periods": array(PERIOD, maxItems=50),
    "managed_availability": {"type": "boolean"},
    "availability_rule_ids": array(string(minLength=1, maxLength=64), maxItems=50),
}, ("sub",))
GROUP = obj({
    "members": array(MEMBER, minItems=1, maxItems=10),
    "required": {"anyOf": [{"const": "all"}, {"type": "integer", "minimum": 1,
                                               "maximum": 10}]},
}, ("members",))
QUERY = obj({
    "participants": array(GROUP, minItems=1, maxItems=10),
    "required_duration": _minutes(1, 1440),
    "query_periods": array(PERIOD, minItems=1, maxItems=50),
    "available_periods": array(PERIOD, minItems=1, maxItems=50,
                               description="the legacy name of query_periods"),
    "buffer": obj({"before": _BUFFER_SIDE, "after": _BUFFER_SIDE}),
    "start_interval": {"anyOf": [obj({"minutes": {
        "type": "integer", "enum": [5, 10, 15, 20, 30, 45, 60]}}, ("minutes",)),
        {"type": "null"}]},
    "response_format": string(enum=["periods", "slots", "overlapping_slots"]),
    "max_results": {"type": "integer", "minimum": 1, "maximum": 512},
    "calgate_tentative_busy": {"type": "boolean", "description": (
        "Calgate: false counts tentative events (and invitations answered tentative) as "
        "free. Default true.")},
    "explain": {"type": "boolean", "description": "Calgate: explain explain_at."},
    "explain_at": TIME,
}, ("participants", "required_duration"))

_ITEM = obj({"start": TIME, "end": TIME, "participants": array(obj(
    {"sub": string()}, ("sub",)))}, ("start", "end", "participants"))
_UNAVAILABLE = array(obj({
    "sub": string(),
    "reason": string(enum=["profile_disconnected", "profile_not_synced",
                           "calendar_not_synced", "no_profile", "no_calendars"]),
    "profile_id": string(pattern="^pro_")}, ("sub", "reason")), description=(
    "Calgate: members whose busy time cannot be known; they are never free."))
_REASON = obj({
    "reason": string(enum=["busy", "buffer_before", "buffer_after", "query_periods",
                           "available_periods", "managed_availability", "unavailable",
                           "off_grid"]),
    "detail": string(), "calendar_id": string(), "event_uid": string(), "status": string(),
    "summary": string("only for an access token with read_events")}, ("reason",))
_EXPLANATION = obj({
    "start": TIME, "end": TIME, "bookable": {"type": "boolean"},
    "off_grid": {"type": "boolean"},
    "members": array(obj({"sub": string(), "free": {"type": "boolean"},
                          "reasons": array(_REASON)}, ("sub", "free", "reasons"))),
    "groups": array(obj({"free": {"type": "integer"}, "required": {"type": "integer"}},
                        ("free", "required"))),
}, ("start", "end", "bookable", "members", "groups"), description=(
    "Calgate: why a meeting of the required duration starting at explain_at is, or is "
    "not, offered"))
ANSWER = obj({
    "available_periods": array(ref("AvailableItem")),
    "available_slots": array(ref("AvailableItem")),
    "calgate_unavailable_members": _UNAVAILABLE,
    "calgate_explanation": _EXPLANATION,
})

SCHEMAS: dict[str, Json] = {"AvailabilityQuery": QUERY, "AvailableItem": _ITEM}

DESCRIPTION = (
    "Answered from the mirror, never from the providers: busy time is each member's "
    "mirrored events (the app's own pending writes included, so a slot just booked is gone "
    "from the next answer). Cancelled and transparent events never count, nor invitations "
    "the member declined; tentative ones count unless `calgate_tentative_busy` is false. "
    "All-day events fill the member's local days (the calendar's zone, else the "
    "account's). Authenticate with an account's access token (`read_free_busy`; members: "
    "that account only) or with the app's client secret (members: any of the app's "
    "accounts). A member Calgate cannot answer for (a disconnected or never-synced "
    "profile) is never free and is listed in `calgate_unavailable_members`. The wrapper "
    "key is `available_periods` for `periods` and `available_slots` for the slot formats. "
    "Limits (each a 422 naming the field): 1 to 10 groups of 1 to 10 members, at most 50 "
    "distinct members; 1 to 50 query periods within 35 days of each other; "
    "`required_duration` 1 to 1440 minutes; buffers 0 to 1440 minutes (of the "
    "`{minimum, maximum}` form the minimum is used); `start_interval` 5, 10, 15, 20, 30, "
    "45 or 60 minutes (slots start on that grid counted from 00:00 UTC; by default the "
    "grid is the duration for slots and any second for periods); `max_results` 1 to 512 "
    "(default 256). `query_slots` is not supported (a 422). With `explain: true` and "
    "`explain_at` (a Time within the query's span) the answer adds "
    "`calgate_explanation`: for a meeting starting then, each member's "
    "obstacles (the calendar and event that is busy, a buffer, the query periods, the "
    "member's own available periods or managed availability, an unavailable profile) and "
    "each group's free count; event summaries only for an access token with `read_events`.")

PATHS: dict[str, Json] = {
    "/v1/availability": {"post": {
        "operationId": "availability", "tags": ["Availability"],
        "security": [*BEARER, *CLIENT_SECRET],
        "summary": "When can these people meet (Cronofy's Availability Query).",
        "description": DESCRIPTION,
        "requestBody": body(ref("AvailabilityQuery"), form=False),
        "responses": {
            "200": reply("Periods or slots, and Calgate's extensions.", ANSWER),
            "429": reply("Too many wrong secrets from this address.", ref("Error")),
            **errors(403, 422)}}},
}
