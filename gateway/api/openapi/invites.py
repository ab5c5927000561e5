"""Smart Invites and the inbound-mail webhook their answers come back through (API.md s11)."""

from __future__ import annotations

from ...services.channels import MAX_URL
from ...services.smart_invites import MAX_RECIPIENTS
from ..event_body import MAX_DESCRIPTION, MAX_SUMMARY
from .events import WHEN_IN, ZONE, _reminder
from .schema import Json, array, body, errors, obj, path, query, ref, reply, string

CLIENT_SECRET: list[Json] = [{"clientSecret": []}]
STATUS = string(enum=["pending", "accepted", "tentative", "declined"])
EMAIL = string(format="email", minLength=3, maxLength=254)
RECIPIENT = obj({"email": string(), "status": STATUS, "comment": string()},
                ("email", "status"))
LOCATION = obj({"description": string(), "lat": string(), "long": string()})
INVITE_EVENT = obj({
    "summary": string(maxLength=MAX_SUMMARY, minLength=1),
    "description": string(maxLength=MAX_DESCRIPTION),
    "start": WHEN_IN, "end": WHEN_IN, "tzid": ZONE, "location": LOCATION,
    "url": string(format="uri"), "transparency": string(enum=["opaque", "transparent"]),
    "reminders": array(_reminder()),
}, ("summary", "start", "end"))
ZONED_OUT = obj({"time": string(), "tzid": string()}, ("time", "tzid"))

NEW_INVITE = obj({
    "method": string("request (default), cancel, or remove (a cancellation for the named "
                     "recipients)", enum=["request", "cancel", "remove"]),
    "smart_invite_id": string("the app's id: the same id updates the invite", minLength=1,
                              maxLength=256),
    "callback_url": string("receives a smart_invite notification for every answer",
                           format="uri", maxLength=MAX_URL),
    "recipient": obj({"email": EMAIL}, ("email",)),
    "recipients": array(obj({"email": EMAIL}, ("email",)), minItems=1,
                        maxItems=MAX_RECIPIENTS),
    "event": INVITE_EVENT,
    "organizer": obj({"name": string("shown as the organizer's name (CN)", maxLength=256),
                      "email": string("echoed only: the ORGANIZER is the operator's mailbox, "
                                      "which receives the answers", format="email")}),
}, ("smart_invite_id",))

INVITE = obj({
    "recipient": RECIPIENT, "recipients": array(RECIPIENT),
    "replies": array(RECIPIENT),
    "smart_invite_id": string(), "callback_url": {"type": ["string", "null"]},
    "event": obj({"summary": string(), "description": string(), "start": ZONED_OUT,
                  "end": ZONED_OUT, "location": LOCATION, "url": string()},
                 ("summary", "start", "end")),
    "attachments": obj({"icalendar": string(
        "the iTIP message to email the recipient: METHOD:REQUEST, or METHOD:CANCEL")},
        ("icalendar",)),
}, ("smart_invite_id", "callback_url", "event", "attachments"))

SCHEMAS: dict[str, Json] = {"SmartInvite": INVITE}
SECURITY_SCHEMES: Json = {"clientSecret": {
    "type": "http", "scheme": "bearer",
    "description": "The client app's client_secret as a bearer token (Cronofy's API key)."}}

_INBOUND_ANSWER = obj({
    "calendars": {"type": "integer", "minimum": 0},
    "replies": obj({}, description="answers found, by outcome: recorded, unchanged, "
                   "unknown (no such invite), refused (not a recipient, or a version never "
                   "sent), ignored (a cancelled invite, an answer with no status)"),
}, ("calendars", "replies"))
_MAIL = {
    "multipart/form-data": {"schema": obj({
        "email": string("SendGrid Inbound Parse, raw: the whole MIME message"),
        "body-mime": string("Mailgun, a route URL ending in mime: the whole MIME message")})},
    "application/json": {"schema": obj({
        "Attachments": array(obj({"Name": string(), "ContentType": string(),
                                  "Content": string("base64")})),
        "RawEmail": string("the whole MIME message, when the server includes it")},
        description="Postmark's inbound webhook")},
    "message/rfc822": {"schema": string("the message itself")},
}


def _inbound(op: str, summary: str) -> Json:
    return {"post": {
        "operationId": op, "tags": ["Smart Invites"], "security": [], "summary": summary,
        "parameters": [path("token", "the webhook's secret (calgate smart-invites "
                                     "inbound-url)")],
        "requestBody": {"required": True, "content": _MAIL},
        "responses": {
            "200": reply("Taken (also when it carries no answer Calgate can use, so the "
                         "service does not retry it).", _INBOUND_ANSWER),
            "400": reply("Not a mail post at all.", ref("Error")),
            "404": reply("Not the webhook's token.", ref("Error")),
            "422": {"$ref": "#/components/responses/Invalid"},  # the edge's input checks
            "413": {"$ref": "#/components/responses/TooLarge"},
            "503": {"$ref": "#/components/responses/Unavailable"}}}}


PATHS: dict[str, Json] = {
    "/v1/smart_invites": {
        "post": {
            "operationId": "upsertSmartInvite", "tags": ["Smart Invites"],
            "security": CLIENT_SECRET,
            "summary": "Create, update or cancel a Smart Invite; the answer carries the "
                       "iCalendar the app emails to the recipient (404 while the operator "
                       "has not set CALGATE_SMART_INVITE_MAILBOX).",
            "requestBody": body(NEW_INVITE),
            "responses": {"200": reply("The invite and its iCalendar.", ref("SmartInvite")),
                          "429": reply("Too many wrong secrets from this address.",
                                       ref("Error")),
                          **errors(404, 422)}},
        "get": {
            "operationId": "getSmartInvite", "tags": ["Smart Invites"],
            "security": CLIENT_SECRET,
            "summary": "A Smart Invite's status for one recipient, with every answer so far.",
            "parameters": [
                query("smart_invite_id", string(minLength=1), "the app's id", required=True),
                query("recipient_email", EMAIL, "a recipient of the invite", required=True)],
            "responses": {"200": reply("OK", ref("SmartInvite")),
                          "429": reply("Too many wrong secrets from this address.",
                                       ref("Error")),
                          **errors(404, 422)}}},
    "/inbound/smart_invites/{token}": _inbound(
        "inboundSmartInviteMail", "Calgate: where the operator's inbound-mail service posts "
        "the mail the Smart Invite mailbox receives (SendGrid raw, Postmark JSON)."),
    "/inbound/smart_invites/{token}/mime": _inbound(
        "inboundSmartInviteMime", "Calgate: the same, for Mailgun routes (Mailgun posts the "
        "raw message only to URLs that end in mime)."),
}
