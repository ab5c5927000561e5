"""Smart Invites (API.md s11) and the inbound-mail webhook their answers come back through.

* ``POST /v1/smart_invites`` (``method`` ``request`` or ``cancel``; ``remove`` is a
  cancellation for the named recipients) and ``GET /v1/smart_invites?smart_invite_id=
  &recipient_email=``, authenticated by the client app's secret as a bearer token.
* ``POST /inbound/smart_invites/{token}`` (and ``…/{token}/mime``: Mailgun posts the raw
  message only to URLs ending in ``mime``): what the operator's inbound-mail service posts.
  A wrong token is a 404 that reveals nothing. Mail that carries no answer Calgate can use
  (no calendar part, another method, an unknown invite, an address that was not invited)
  is acknowledged with 200 so the service does not retry it; only a body that is no mail
  post at all is a 400, and a database or secret-store outage a 503, which services retry.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from math import isfinite
from typing import Any

from anyio import to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services import inbound_mail, itip
from ..services.inbound_token import InboundToken
from ..services.smart_invites import (
    MAX_RECIPIENTS,
    InviteNotFound,
    InviteRequest,
    Organizer,
    SmartInviteError,
    SmartInviteService,
)
from .app_auth import AppAuthenticator
from .auth import Wake
from .errors import ApiError, not_found
from .event_body import MAX_EMAIL, MAX_NAME, desired_event
from .guard import MAX_BODY_BYTES
from .params import InvalidParam, Params, read_params

log = logging.getLogger("calgate.smart_invites")
MAX_INVITE_ID = 256
METHODS = {"request": "request", "cancel": "cancel", "remove": "cancel"}
NOT_CONFIGURED = ApiError(404, {"error": "not_found", "description": (
    "Smart Invites are off on this Calgate: its operator sets CALGATE_SMART_INVITE_MAILBOX "
    "to turn them on")})


def _one_line(value: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _email(value: Any, field: str) -> str:
    local, at, domain = value.partition("@") if isinstance(value, str) else ("", "", "")
    if not at or not local or not domain or "@" in domain or len(value) > MAX_EMAIL \
            or any(c.isspace() for c in value) or not _one_line(value):
        raise InvalidParam(field, "invalid", f"{field} must be an email address")
    return str(value)


def _recipients(params: Params) -> tuple[tuple[str, ...], bool]:
    many = params.raw("recipients")
    if many is not None:
        if not isinstance(many, list) or not 1 <= len(many) <= MAX_RECIPIENTS:
            raise InvalidParam("recipients", "invalid",
                               f"recipients is a list of 1 to {MAX_RECIPIENTS} "
                               '{"email": …}')
        emails = [_email(r.get("email") if isinstance(r, dict) else None, "recipients.email")
                  for r in many]
        return tuple(dict.fromkeys(emails)), True
    one = params.raw("recipient")
    if not isinstance(one, dict):
        raise InvalidParam("recipient", "required", 'recipient must be {"email": …}')
    return (_email(one.get("email"), "recipient.email"),), False


def _event(params: Params) -> tuple[Any, tuple[float, float] | None]:
    raw = params.raw("event")
    if not isinstance(raw, dict):
        raise InvalidParam("event", "required", "event must be specified")
    # A Smart Invite's attendees are its recipients; conferencing needs a calendar.
    fields = {k: v for k, v in raw.items() if k not in ("attendees", "conferencing")}
    try:
        event = desired_event(Params(fields))
    except InvalidParam as exc:
        detail = exc.body["errors"][exc.field][0]["description"]  # type: ignore[index]
        raise InvalidParam(f"event.{exc.field}", exc.code, f"event.{detail}") from None
    return event, _geo(raw.get("location"))


def _geo(location: Any) -> tuple[float, float] | None:
    if not isinstance(location, dict) or location.get("lat") is None \
            or location.get("long") is None:
        return None
    try:
        lat, long = float(location["lat"]), float(location["long"])
    except (TypeError, ValueError):
        lat = long = float("nan")
    if not (isfinite(lat) and isfinite(long) and -90 <= lat <= 90 and -180 <= long <= 180):
        raise InvalidParam("event.location", "invalid",
                           "event.location.lat and long are decimal degrees")
    return lat, long


def _organizer(params: Params) -> Organizer:
    raw = params.raw("organizer")
    if raw is None:
        return Organizer()
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or (name is not None and (
            not isinstance(name, str) or len(name) > MAX_NAME or not _one_line(name))):
        raise InvalidParam("organizer", "invalid", 'organizer is {"name": "…"}, one line')
    email = raw.get("email")
    return Organizer(name or None,
                     _email(email, "organizer.email") if email is not None else None)


def invite_request(params: Params) -> InviteRequest:
    """Validate ``POST /v1/smart_invites``."""
    invite_id = params.text("smart_invite_id", required=True)
    assert invite_id is not None
    if len(invite_id) > MAX_INVITE_ID or not _one_line(invite_id):
        raise InvalidParam("smart_invite_id", "invalid",
                           f"smart_invite_id is one line of at most {MAX_INVITE_ID} characters")
    method = METHODS.get((params.text("method") or "request").strip().lower())
    if method is None:
        raise InvalidParam("method", "invalid", "method is request or cancel")
    recipients, many = _recipients(params)
    event, geo = _event(params) if method == "request" else (None, None)
    return InviteRequest(
        smart_invite_id=invite_id, method="cancel" if method == "cancel" else "request",
        recipients=recipients, many=many, event=event, geo=geo,
        organizer=_organizer(params), callback_url=params.text("callback_url"))


@dataclass(frozen=True, slots=True)
class _Handlers:
    authenticate: AppAuthenticator
    invites: SmartInviteService
    tokens: InboundToken
    wake: Wake

    async def upsert(self, request: Request) -> Response:
        client_id = await self.authenticate(request)
        if not self.invites.enabled:
            raise NOT_CONFIGURED
        wanted = invite_request(await read_params(request))
        try:
            body = await to_thread.run_sync(self.invites.upsert, client_id, wanted)
        except SmartInviteError as exc:
            raise InvalidParam(exc.field, exc.code, exc.description) from None
        except InviteNotFound:
            raise not_found() from None
        return JSONResponse(body)

    async def status(self, request: Request) -> Response:
        client_id = await self.authenticate(request)
        if not self.invites.enabled:
            raise NOT_CONFIGURED
        params = await read_params(request)
        invite_id = params.text("smart_invite_id", required=True)
        email = _email(params.text("recipient_email", required=True), "recipient_email")
        assert invite_id is not None
        try:
            body = await to_thread.run_sync(self.invites.get, client_id, invite_id, email)
        except InviteNotFound:
            raise not_found() from None
        return JSONResponse(body)

    async def inbound(self, request: Request) -> Response:
        if not await to_thread.run_sync(self.tokens.accepts, request.path_params["token"]):
            return JSONResponse({"error": "not_found"}, status_code=404)
        try:
            calendars = await _calendars(request)
        except ValueError as exc:
            return JSONResponse({"error": "invalid_request", "description": str(exc)},
                                status_code=400)
        replies: dict[tuple[str, str], itip.Reply] = {}
        for text in dict.fromkeys(calendars):  # iMIP often attaches the same part twice
            for reply in await to_thread.run_sync(itip.replies_in, text):
                replies.setdefault((reply.uid, reply.attendee.lower()), reply)
        outcomes: dict[str, int] = {}
        for reply in replies.values():
            outcome = await to_thread.run_sync(self.invites.record_reply, reply)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcomes.get("refused"):
            log.warning("refused %d answer(s) from addresses not invited", outcomes["refused"])
        if outcomes.get("recorded"):
            await self.wake()
        return JSONResponse({"calendars": len(calendars), "replies": outcomes})


async def _calendars(request: Request) -> list[str]:
    """The calendar texts of the mail, in whichever shape the service posted it."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_part_size=MAX_BODY_BYTES) as form:  # closes its files
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            files = [(v.filename, v.content_type, await v.read())
                     for _, v in form.multi_items() if isinstance(v, UploadFile)]
        return await to_thread.run_sync(inbound_mail.calendars_in_form, fields, files)
    raw = await request.body()
    if "json" in kind or raw.lstrip()[:1] == b"{":
        try:
            document = json.loads(raw)
        except ValueError:
            raise ValueError("the body is not JSON") from None
        if not isinstance(document, dict):
            raise ValueError("the JSON body is not an object")
        return await to_thread.run_sync(inbound_mail.calendars_in_postmark, document)
    if kind.startswith("message/") or kind == "text/plain":  # a raw message as the body
        return await to_thread.run_sync(inbound_mail.calendars_in_mime, raw)
    raise ValueError("expected a form (SendGrid, Mailgun), JSON (Postmark) or a message")


def routes_for(authenticate: AppAuthenticator, invites: SmartInviteService,
               tokens: InboundToken, wake: Wake) -> list[Route]:
    """The Smart Invite routes over their services, built once (create_app)."""
    handlers = _Handlers(authenticate, invites, tokens, wake)
    return [
        Route("/v1/smart_invites", handlers.upsert, methods=["POST"]),
        Route("/v1/smart_invites", handlers.status, methods=["GET"]),
        Route("/inbound/smart_invites/{token}", handlers.inbound, methods=["POST"]),
        Route("/inbound/smart_invites/{token}/mime", handlers.inbound, methods=["POST"]),
    ]


__all__ = ["invite_request", "routes_for"]
