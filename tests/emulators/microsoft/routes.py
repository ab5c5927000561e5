"""Request routing: the identity platform under ``/{tenant}/``, Graph under ``/v1.0/``
(bearer-checked, fault-injected per mailbox, logged), everything else 404."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from . import consent, graph
from .errors import GraphError, OAuthError
from .faults import LoggedRequest
from .server import DROP, Request, Response

if TYPE_CHECKING:
    from .emulator import MicrosoftEmulator

GRAPH_PREFIX = "/v1.0"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status, b"", headers or {})
    return Response(status, json.dumps(body).encode(),
                    {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def handle(emu: MicrosoftEmulator, request: Request) -> Response:
    entry = LoggedRequest(request.method, unquote(request.path), request.query,
                          request.headers)
    with emu.world.lock:
        emu.log.append(entry)
        if entry.path.startswith(GRAPH_PREFIX + "/"):
            response = _graph(emu, request, entry)
        else:
            response = _identity(emu, request, entry)
        entry.status = response.status
        hold = emu.faults.take_hold(entry)
    if hold is not None:  # outside the lock: the rest of the world goes on meanwhile
        hold.wait()
    return response


def _graph(emu: MicrosoftEmulator, request: Request, entry: LoggedRequest) -> Response:
    path = entry.path[len(GRAPH_PREFIX):]
    try:
        header = request.headers.get("authorization", "")
        token = emu.identity.bearer(header[7:]) if header.startswith("Bearer ") else None
        if token is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token has expired or "
                             "is not yet valid.", {"WWW-Authenticate": 'Bearer realm=""'})
        entry.user = token.user
        fault = emu.faults.take(token.user, request.method, path)
        if fault is not None and not fault.drop_answer:
            entry.injected = True
            raise fault.error()
        handler, params = graph.route(request.method, _as_me(path, token.user, emu))
        entry.kind = handler.__name__.lstrip("_")  # refined by the handler when it answers
        body = json.loads(request.body) if request.body else None
        call = graph.Call(emu, emu.world.users[token.user], token.scopes, token.client_id,
                          request.method, request.query, request.headers, body, params)
        status, payload, entry.kind = handler(call)
    except GraphError as exc:
        return json_response(exc.status, exc.body(), exc.headers)
    except ValueError:
        return json_response(400, GraphError(400, "BadRequest", "Unable to read JSON request "
                                             "payload.").body())
    if fault is not None:  # applied, but the answer never arrives
        entry.injected = True
        return DROP
    return json_response(status, payload, {"request-id": "emulated"})


def _as_me(path: str, email: str, emu: MicrosoftEmulator) -> str:
    """``/users/{id | userPrincipalName}/...`` for the caller's own mailbox is ``/me/...``
    (delegated access to other mailboxes is not emulated). msgraph-sdk's placeholder
    ``me-token-to-replace`` counts as the caller: its URL-rewriting middleware is not on
    every client it is given."""
    if not path.startswith("/users/"):
        return path
    who, _, rest = path[len("/users/"):].partition("/")
    user = emu.world.users[email]
    if who.lower() not in (user.oid, user.email, "me-token-to-replace"):
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and "
                         "try again.")
    return "/me/" + rest if rest else "/me"


def _identity(emu: MicrosoftEmulator, request: Request, entry: LoggedRequest) -> Response:
    tenant, _, rest = entry.path.strip("/").partition("/")
    entry.kind = rest or "other"
    if rest == "v2.0/.well-known/openid-configuration":
        return json_response(200, emu.openid_configuration(tenant))
    if rest in ("discovery/v2.0/keys", "discovery/keys"):
        return json_response(200, emu.identity.jwks())
    if rest == "discovery/instance" or entry.path == "/common/discovery/instance":
        return json_response(200, emu.instance_metadata(request.query))
    if rest == "oauth2/v2.0/authorize" and request.method == "GET":
        entry.kind = "authorize"
        page = consent.authorize(emu.world, tenant, request.query)
        return Response(page.status, page.html.encode(), {"Content-Type": "text/html"})
    if rest == "oauth2/v2.0/authorize/consent" and request.method == "POST":
        entry.kind = "consent"
        grants = parse_qs(request.body.decode()).get("grant", [])
        decided = consent.decide(emu.world, emu.identity, tenant, request.form(), grants,
                                 emu.places)
        if isinstance(decided, consent.Redirect):
            return Response(302, b"", {"Location": decided.location})
        return Response(decided.status, decided.html.encode(), {"Content-Type": "text/html"})
    if rest == "oauth2/v2.0/token" and request.method == "POST":
        entry.kind = "token"
        return _token(emu, request)
    return json_response(404, {"error": "not_found", "error_description": entry.path})


def _token(emu: MicrosoftEmulator, request: Request) -> Response:
    basic = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        basic = (unquote(client_id), unquote(secret))
    try:
        answer = emu.identity.token(request.form(), basic, emu.base_url)
    except OAuthError as exc:
        return json_response(exc.status, exc.body())
    return json_response(200, answer, {"Cache-Control": "no-store"})
