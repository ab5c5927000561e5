"""Channels, batches, provider webhooks and the operational endpoints (API.md s9, s11)."""

from __future__ import annotations

from ...services.batches import MAX_ENTRIES
from ...services.channels import MAX_URL
from .events import DELETE, UPSERT
from .schema import (
    BEARER,
    BOOL_PARAM,
    TIME_PATTERN,
    Json,
    array,
    body,
    errors,
    header,
    nullable,
    obj,
    path,
    query,
    ref,
    reply,
    response_ref,
    string,
)

UTC_TIME = nullable(string(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"))
CHANNEL = obj({
    "channel_id": string(pattern="^chn_"), "callback_url": string(format="uri"),
    "filters": obj({"calendar_ids": array(string()), "only_managed": {"type": "boolean"}}),
    "status": string(), "failing_since": UTC_TIME, "last_delivered_at": UTC_TIME,
    "created_at": UTC_TIME, "pending_notifications": {"type": "integer", "minimum": 0},
}, ("channel_id", "callback_url", "filters"))

NEW_CHANNEL = obj({
    "callback_url": string("an http(s) URL that receives the notifications",
                           format="uri", minLength=1, maxLength=MAX_URL),
    "filters": obj({"calendar_ids": array(string(minLength=1), minItems=1),
                    "only_managed": BOOL_PARAM}),
}, ("callback_url",))

DELIVERY = obj({
    "notification_id": string(), "type": string(), "attempt": {"type": "integer"},
    "at": UTC_TIME, "status": nullable({"type": "integer"}), "error": nullable(string()),
    "duration_ms": nullable({"type": "integer"}),
}, ("notification_id", "type", "attempt", "at", "status", "error", "duration_ms"))

_ENTRY = obj({
    "method": string(enum=["POST", "DELETE"]),
    "relative_url": string("/v1/calendars/{calendar_id}/events",
                           pattern=r"^/v1/calendars/[^/?#]+/events$"),
    "data": {"anyOf": [UPSERT, DELETE]},
}, ("method", "relative_url", "data"))
BATCH = obj({"batch": array(_ENTRY, minItems=1, maxItems=MAX_ENTRIES)}, ("batch",))
ENTRY_RESULT = obj({
    "status": {"type": "integer", "enum": [202, 403, 404, 422]},
    "data": {"anyOf": [ref("ValidationErrors"), ref("Error")]},
}, ("status",))
PROGRESS = obj({
    "batch_id": string(), "created_at": UTC_TIME,
    **{k: {"type": "integer", "minimum": 0} for k in
       ("entries", "accepted", "rejected", "applied", "pending", "failed")},
    "failures": array(obj({"position": {"type": "integer"}, "error": nullable(string())},
                          ("position", "error"))),
}, ("batch_id", "created_at", "entries", "accepted", "rejected", "applied", "pending",
    "failed", "failures"))

SCHEMAS: dict[str, Json] = {"Channel": CHANNEL}
_CHANNEL_ID = path("channel_id", "a channel of this account")


def _op(op: str, tag: str, summary: str, responses: Json, **more: object) -> Json:
    return {"operationId": op, "tags": [tag], "security": BEARER, "summary": summary,
            **more, "responses": responses}


def _ops(op: str, summary: str, media: str, schema: Json | None = None) -> Json:
    return {"operationId": op, "tags": ["Operations"], "security": [], "summary": summary,
            "responses": {"200": reply("OK", schema, media=media)}}


_STATUS = obj({"status": string(enum=["ok", "unavailable"])}, ("status",))

PATHS: dict[str, Json] = {
    "/v1/channels": {
        "post": _op("createChannel", "Channels", "Receive change notifications at a URL "
                    "(read_events, or any scope with filters.only_managed).", {
                        "200": reply("Created (or the identical existing channel).", obj(
                            {"channel": ref("Channel")}, ("channel",))),
                        **errors(403, 422)}, requestBody=body(NEW_CHANNEL, form=False)),
        "get": _op("listChannels", "Channels", "The account's channels.", {
            "200": reply("OK", obj({"channels": array(ref("Channel"))}, ("channels",))),
            **errors()})},
    "/v1/channels/{channel_id}": {"delete": _op(
        "closeChannel", "Channels", "Close a channel.",
        {"202": reply("Closed."), **errors(404)}, parameters=[_CHANNEL_ID])},
    "/v1/channels/{channel_id}/deliveries": {"get": _op(
        "channelDeliveries", "Channels", "Calgate: the channel's recent delivery attempts.",
        {"200": reply("OK", obj({"channel": ref("Channel"), "deliveries": array(DELIVERY)},
                                ("channel", "deliveries"))), **errors(404, 422)},
        parameters=[_CHANNEL_ID, query("limit", string(pattern=r"^[1-9]\d{0,2}$"),
                                       "how many, 1 to 500 (default 100)")])},
    "/v1/channels/{channel_id}/replay": {"post": _op(
        "replayChannel", "Channels", "Calgate: send again the notifications since a time.",
        {"202": reply("Queued.", obj({"replay": obj({"queued": {"type": "integer"}},
                                                    ("queued",))}, ("replay",))),
         **errors(404, 422)}, parameters=[_CHANNEL_ID],
        requestBody=body(obj({"since": string(pattern=TIME_PATTERN)}, ("since",))))},
    "/v1/batch": {"post": _op(
        "batch", "Events", f"Up to {MAX_ENTRIES} upserts and deletes of events (the app's own "
        "by event_id; others' by event_uid, with elevated permissions); each entry answers as "
        "its single request would (accepted ones 202).", {
            "207": reply("One result per entry, in request order.", obj(
                {"batch": array(ENTRY_RESULT), "batch_id": string()}, ("batch", "batch_id")),
                headers={"Location": header("GET this to follow the writes upstream",
                                            required=True)}),
            **errors(422)}, requestBody=body(BATCH, form=False))},
    "/v1/batch/{batch_id}": {"get": _op(
        "batchProgress", "Events", "Calgate: how far a batch's writes have got upstream.",
        {"200": reply("OK", obj({"batch": PROGRESS}, ("batch",))), **errors(404)},
        parameters=[path("batch_id", "from POST /v1/batch")])},
    "/webhooks/{provider}": {"post": {
        "operationId": "providerPush", "tags": ["Operations"], "security": [],
        "summary": "An upstream provider's push notifications (a watch channel or a "
                   "subscription), read by that provider's own parser.",
        "parameters": [
            path("provider", "the provider whose channel it is"),
            query("validationToken", string(), "a subscription handshake: the token is "
                  "echoed back as text/plain, nothing else is done"),
            query("channel", string(), "the channel the subscription was created for (set "
                  "by Calgate in the notification URL it gives the provider)")],
        "responses": {"200": reply("Taken: the profile will sync; for a handshake, the "
                                   "validationToken echoed as text/plain.", string(),
                                   media="text/plain"),
                      "404": reply("Not a channel of ours.", ref("Error")),
                      "413": response_ref("TooLarge"),
                      "422": response_ref("Invalid"),
                      "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/healthz": {"get": _ops("healthz", "The process is up.", "application/json",
                             _STATUS)},
    "/readyz": {"get": _ops("readyz", "The database and the secret store answer.",
                            "application/json", _STATUS)
                | {"responses": {"200": reply("Ready", _STATUS),
                                 "503": reply("Not ready", _STATUS)}}},
    "/metrics": {"get": _ops("metrics", "Prometheus metrics.", "text/plain",
                             string())},
}
