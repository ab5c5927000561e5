"""Request routing: the OAuth endpoints, the Calendar API (discovery-checked, token- and
scope-checked, then dispatched), and the ``/_emulator`` control endpoints."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import api, consent, directory, discovery
from .errors import ApiError, insufficient_scopes, invalid, unauthenticated
from .faults import LoggedRequest
from .oauth import OAuthError
from .server import DROP, Request, Response

if TYPE_CHECKING:
    from .emulator import GoogleEmulator

API_PREFIX = "/calendar/v3/"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status, b"", headers or {})
    return Response(status, json.dumps(body).encode(),
                    {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})


def handle(emu: GoogleEmulator, request: Request) -> Response:
    path = unquote(request.path)  # logged and matched decoded: "/calendars/a@b/events"
    entry = LoggedRequest(request.method, path, request.query)
    with emu.world.lock:
        emu.log.append(entry)
        fault = emu.faults.take(request.method, path)
        if fault is not None and not fault.drop_answer:
            entry.injected = True
            error = fault.error()
            entry.status = error.code
            return json_response(error.code, error.body(), error.headers)
        response = _route(emu, request, entry)
        if fault is not None:  # applied, but the answer never arrives
            entry.injected = True
            entry.status = 0
            return DROP
        entry.status = response.status
        return response


def _route(emu: GoogleEmulator, request: Request, entry: LoggedRequest) -> Response:
    path = request.path
    if path.startswith(API_PREFIX):
        try:
            return _api(emu, request, path[len(API_PREFIX):], entry)
        except ApiError as exc:
            return json_response(exc.code, exc.body(), exc.headers)
    if path.startswith(directory.PREFIX):
        entry.api_method = "resources.calendars.list"
        try:
            return json_response(200, directory.handle(
                emu.directory, emu.oauth, request.method, path[len(directory.PREFIX):],
                request.query, request.headers.get("authorization", "")))
        except ApiError as exc:
            return json_response(exc.code, exc.body(), exc.headers)
    if path == "/o/oauth2/v2/auth" and request.method == "GET":
        page = consent.authorize(emu.oauth, request.query)
        return Response(page.status, page.html.encode(), {"Content-Type": "text/html"})
    if path == "/o/oauth2/v2/auth/decision" and request.method == "POST":
        decided = consent.decide(emu.world, emu.oauth, request.form(), emu.base_url,
                                 emu.auto_create_users)
        if isinstance(decided, consent.Redirect):
            return Response(302, b"", {"Location": decided.location})
        return Response(decided.status, decided.html.encode(), {"Content-Type": "text/html"})
    if path == "/token" and request.method == "POST":
        return _token(emu, request)
    if path == "/revoke" and request.method == "POST":
        token = (request.form().get("token") or request.query.get("token") or [""])[0]
        if emu.oauth.revoke(token):
            return json_response(200, {})
        return json_response(400, {"error": "invalid_token",
                                   "error_description": "Token expired or revoked"})
    if path.startswith("/_emulator/"):
        return emu.control_route(request)
    return json_response(404, {"error": {"code": 404, "message": "Not Found"}})


def _token(emu: GoogleEmulator, request: Request) -> Response:
    basic = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        basic = (client_id, secret)
    form = {k: v[0] for k, v in request.form().items()}
    try:
        return json_response(200, emu.oauth.token(form, basic),
                             {"Cache-Control": "no-store"})
    except OAuthError as exc:
        return json_response(exc.status, exc.body())


def _api(emu: GoogleEmulator, request: Request, rest: str, entry: LoggedRequest) -> Response:
    method, path_params = discovery.match(request.method, rest)
    entry.api_method = method.name
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise unauthenticated("Request is missing required authentication credential. "
                              "Expected OAuth 2 access token, login cookie or other valid "
                              "authentication credential.")
    token = emu.oauth.bearer(header[7:])
    if token is None:
        raise unauthenticated()
    entry.user = token.user
    if not token.scopes & method.scopes:
        raise insufficient_scopes(".".join(p[:1].upper() + p[1:]
                                           for p in method.name.split(".")))
    params = discovery.check_query(method, request.query)
    body = None
    if method.request is not None:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if body is None:
            raise invalid("Required request body is missing.", reason="required")
        discovery.check_body(method, body)
    call = api.Call(emu.world, emu.push, token.user, token.client_id, token.scopes,
                    method.name, path_params, params, body, request.headers, emu.base_url)
    status, payload = api.dispatch(call)
    emu.mail.extend(call.updates)
    return json_response(status, payload)
