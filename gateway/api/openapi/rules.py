"""Managed availability (rules and available periods, API.md s8.3) and sequenced
availability (s8.2)."""

from __future__ import annotations

from ...services.availability_rules import MAX_WEEKLY_PERIODS
from ..sequenced_body import MAX_ITEMS, MAX_SEQUENCES
from .schema import (
    BEARER,
    BOOL_PARAM,
    DATE_PATTERN,
    TIME_PATTERN,
    ZONE_PATTERN,
    Json,
    array,
    body,
    errors,
    obj,
    path,
    query,
    ref,
    reply,
    string,
)

_APP_ID = string("the app's own id: printable ASCII, 1 to 64 characters", minLength=1,
                 maxLength=64, pattern=r"^[ -~]+$")
_ZONE = string("an IANA time zone, e.g. Europe/Paris", pattern=ZONE_PATTERN)
_CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKLY = obj({
    "day": string(enum=_DAYS),
    "start_time": string("local time of day, 00:00 to 23:59", pattern=_CLOCK),
    "end_time": string("local time of day after start_time; 24:00 is midnight",
                       pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"),
}, ("day", "start_time", "end_time"))
RULE = obj({
    "availability_rule_id": _APP_ID,
    "tzid": _ZONE,
    "calendar_ids": array(string(minLength=1), minItems=1, description=(
        "the calendars whose events count as busy under this rule (left out: all)")),
    "weekly_periods": array(_WEEKLY, minItems=1, maxItems=MAX_WEEKLY_PERIODS),
}, ("availability_rule_id", "tzid", "weekly_periods"))
_RULE_REPLY = obj({"availability_rule": ref("AvailabilityRule")}, ("availability_rule",))
_MOMENT: Json = {"anyOf": [
    string("a Time (UTC)", pattern=TIME_PATTERN),
    obj({"time": string(pattern=TIME_PATTERN), "tzid": _ZONE}, ("time",),
        description="the time (always UTC) and the zone the app shows it in")]}
_NEW_PERIOD = obj({"available_period_id": _APP_ID, "start": _MOMENT, "end": _MOMENT},
                  ("available_period_id", "start", "end"))
_PERIOD = obj({"available_period_id": string(), "start": string(), "end": string()},
              ("available_period_id", "start", "end"))
_PAGES = obj({"current": {"type": "integer", "minimum": 1},
              "total": {"type": "integer", "minimum": 1},
              "next_page": string(format="uri")}, ("current", "total"))
_PERIODS = obj({"pages": _PAGES, "available_periods": array(_PERIOD)},
               ("pages", "available_periods"))
_DELETE = obj({"available_period_id": _APP_ID, "delete_all": BOOL_PARAM},
              description="exactly one of available_period_id and delete_all: true")
_LIST = [
    query("from", string(pattern=DATE_PATTERN), "the first Date (in tzid) to list"),
    query("to", string(pattern=DATE_PATTERN), "the Date (in tzid) to stop before"),
    query("tzid", _ZONE, "the zone of from and to (default Etc/UTC)"),
    query("localized_times", BOOL_PARAM, "write times with tzid's offset instead of Z"),
]
_RULE_ID = path("availability_rule_id", "the app's id of the rule")

_DURATION = obj({"minutes": {"type": "integer", "minimum": 0}}, ("minutes",))
_GAP: Json = {"anyOf": [_DURATION, obj({"minimum": _DURATION, "maximum": _DURATION})]}
_SPAN = obj({"start": string(pattern=TIME_PATTERN), "end": string(pattern=TIME_PATTERN)},
            ("start", "end"))
_MEMBER = obj({"sub": string(minLength=1, maxLength=64),
               "calendar_ids": array(string(minLength=1)),
               "available_periods": array(_SPAN),
               "managed_availability": BOOL_PARAM,
               "availability_rule_ids": array(string(minLength=1))}, ("sub",))
_GROUP = obj({"members": array({"anyOf": [_MEMBER, string(minLength=1)]}, minItems=1),
              "required": {"anyOf": [string(enum=["all"]), {"type": "integer",
                                                           "minimum": 1}]}}, ("members",))
_ITEM = obj({
    "sequence_id": {"anyOf": [string(minLength=1, maxLength=64), {"type": "integer"}]},
    "ordinal": {"type": "integer", "minimum": 0},
    "participants": array(_GROUP, minItems=1),
    "required_duration": _DURATION,
    "start_interval": {"anyOf": [_DURATION, {"type": "null"}]},
    "buffer": obj({"before": _GAP, "after": _GAP}, description=(
        "minimum: free time the members need around the event, and the least gap to the "
        "event before (after) it; maximum: the greatest such gap")),
    "available_periods": array(_SPAN, description="narrow where this event may go"),
    "event": {"type": "object", "description": "accepted, not used"},
}, ("sequence_id", "ordinal", "participants", "required_duration"))
_SEQUENCED = obj({
    "sequence": array(_ITEM, minItems=1, maxItems=MAX_ITEMS),
    "query_periods": array(_SPAN, minItems=1),
    "available_periods": array(_SPAN, description="the legacy name of query_periods"),
    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_SEQUENCES},
}, ("sequence",))
_PLACED = obj({"sequence_id": {"anyOf": [string(), {"type": "integer"}]},
               "start": string(), "end": string(),
               "participants": array(obj({"sub": string()}, ("sub",)))},
              ("sequence_id", "start", "end", "participants"))
_SEQUENCES = obj({
    "sequences": array(obj({"sequence": array(_PLACED)}, ("sequence",))),
    "calgate_unavailable_members": array(obj({
        "sub": string(), "reason": string(), "profile_id": string()}, ("sub", "reason"))),
}, ("sequences",))

SCHEMAS: dict[str, Json] = {"AvailabilityRule": RULE}
_TAG = "Availability"


def _op(op: str, summary: str, responses: Json, **more: object) -> Json:
    return {"operationId": op, "tags": [_TAG], "security": BEARER, "summary": summary,
            **more, "responses": responses}


PATHS: dict[str, Json] = {
    "/v1/availability_rules": {
        "post": _op("upsertAvailabilityRule", "Create or replace an availability rule of the "
                    "account (any of its tokens).", {
                        "200": reply("Saved.", _RULE_REPLY), **errors(422)},
                    requestBody=body(RULE)),
        "get": _op("listAvailabilityRules", "The account's availability rules.", {
            "200": reply("OK", obj({"availability_rules": array(ref("AvailabilityRule"))},
                                   ("availability_rules",))), **errors()})},
    "/v1/availability_rules/{availability_rule_id}": {
        "get": _op("readAvailabilityRule", "One availability rule.", {
            "200": reply("OK", _RULE_REPLY), **errors(404)}, parameters=[_RULE_ID]),
        "delete": _op("deleteAvailabilityRule", "Delete an availability rule.", {
            "202": reply("Deleted."), **errors(404)}, parameters=[_RULE_ID])},
    "/v1/available_periods": {
        "post": _op("upsertAvailablePeriod", "Create or move a one-off available period.", {
            "202": reply("Saved."), **errors(422)}, requestBody=body(_NEW_PERIOD, form=False)),
        "get": _op("listAvailablePeriods", "The account's available periods that overlap "
                   "[from, to), 100 a page.", {"200": reply("OK", _PERIODS), **errors(422)},
                   parameters=_LIST),
        "delete": _op("deleteAvailablePeriods", "Delete one available period, or all.", {
            "202": reply("Deleted."), **errors(422)}, requestBody=body(_DELETE, form=False))},
    "/v1/sequenced_availability": {"post": {
        "operationId": "sequencedAvailability", "tags": [_TAG],
        "security": [{"bearer": []}, {"clientSecret": []}],
        "summary": "Several events in order, with the gaps their buffers allow: an access "
                   "token (read_free_busy, its own account) or the client secret (any of "
                   "the app's accounts).",
        "requestBody": body(_SEQUENCED, form=False),
        "responses": {"200": reply("Earliest first, each sequence starting at a different "
                                   "time.", _SEQUENCES), **errors(403, 422)}}},
    "/v1/available_periods/pages/{token}": {"get": _op(
        "availablePeriodsPage", "A further page (the next_page URL, followed verbatim).",
        {"200": reply("OK", _PERIODS), **errors(404)},
        parameters=[path("token", "from pages.next_page")])},
}
