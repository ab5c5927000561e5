"""Starlette glue for the token, revocation, introspection and metadata endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from .server import CalgateServer, Request


async def read_body_items(request: HttpRequest) -> list[tuple[str, str]]:
    """Body parameters from JSON (as the Cronofy SDKs send) or a form; never the query."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw:
        return []
    if ctype == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidRequestError("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidRequestError("The JSON body must be an object.")
        return [(str(k), _text(v)) for k, v in data.items() if v is not None]
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def oauth_json(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    """An OAuth JSON response; errors and tokens are never cached (RFC 6749 s5.1, s5.2)."""
    response = JSONResponse(body if isinstance(body, dict) else dict(body), status_code=status)
    for key, value in headers:
        response.headers[key] = value
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def error_response(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return oauth_json(status, body, headers)


async def _oauth_request(request: HttpRequest) -> Request:
    items = await read_body_items(request)
    headers = {k: v for k, v in request.headers.items()}
    remote = request.client.host if request.client else ""
    return Request(request.method, str(request.url), items, headers, remote)


def _handler(server: CalgateServer,
             work: Callable[[CalgateServer, Request], tuple[int, Any, list[tuple[str, str]]]]
             ) -> Callable[[HttpRequest], Any]:
    async def endpoint(request: HttpRequest) -> Response:
        try:
            oauth_request = await _oauth_request(request)
            if oauth_request.payload.repeated():
                raise InvalidRequestError("A parameter was sent more than once.")
            status, body, headers = await to_thread.run_sync(work, server, oauth_request)
        except OAuth2Error as error:
            return error_response(error)
        if status == 200 and body == "":
            response = Response(status_code=200)
            response.headers["Cache-Control"] = "no-store"
            return response
        return oauth_json(status, body, headers)

    return endpoint


def _token(server: CalgateServer, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
    if "grant_type" not in request.payload.data:
        # RFC 6749 s5.2: a missing parameter is invalid_request (Authlib says unsupported).
        raise InvalidRequestError("Missing 'grant_type'.")
    result: tuple[int, Any, list[tuple[str, str]]] = server.create_token_response(request)
    return result


def _revoke(server: CalgateServer, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
    """RFC 7009 plus Cronofy's ``sub`` form: ends the whole authorization; always 200."""
    client = server.authenticate_client(request, ["client_secret_basic", "client_secret_post",
                                                  "none"], "revocation")
    data = request.payload.data
    token = data.get("token") or (None if data.get("sub") else data.get("refresh_token"))
    subject: str | None = None
    if token:
        found = server.store.lookup_any(token)
        if found is not None and found["client_id"] == client.client_id:
            subject = found["subject"]
    elif data.get("sub"):
        subject = data["sub"] if server.store.subject_belongs(data["sub"], client.client_id) \
            else None
    else:
        raise InvalidRequestError("Missing 'token'.")
    if subject is not None:
        server.host.revoke_subject(subject)
        server.store.revoke_subject(subject, "revoked")
    return 200, "", []


def _introspect(server: CalgateServer, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
    """RFC 7662, for the client the token was issued to; anything else is inactive."""
    client = server.authenticate_client(request, ["client_secret_basic", "client_secret_post"],
                                        "introspection")
    token = request.payload.data.get("token")
    if not token:
        raise InvalidRequestError("Missing 'token'.")
    info = server.store.introspect(token)
    if info is None or info["client_id"] != client.client_id:
        return 200, {"active": False}, []
    return 200, info, []


def token_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _token)


def revocation_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _revoke)


def introspection_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _introspect)


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    from .scopes import KNOWN

    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/token/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/v1/userinfo",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "scopes_supported": sorted(KNOWN),
        "authorization_response_iss_parameter_supported": True,
    }
