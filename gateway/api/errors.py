"""One exception tree for the /v1 API, rendered once into the JSON bodies of API.md."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("calgate.api")


class ApiError(Exception):
    """An error the API answers with ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: dict[str, object],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("error", status))
        self.status = status
        self.body = body
        self.headers = headers or {}


def unauthorized(challenge: str) -> ApiError:
    return ApiError(401, {"error": "invalid_token"}, {"WWW-Authenticate": challenge})


def forbidden(scope: str, challenge: str) -> ApiError:
    return ApiError(403, {"error": "insufficient_scope", "required_scope": scope},
                    {"WWW-Authenticate": challenge})


def not_found() -> ApiError:
    return ApiError(404, {"error": "not_found"})


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def handle_server_error(request: Request, exc: Exception) -> Response:
    """500 without internals; the traceback goes to the log only."""
    return JSONResponse({"error": "server_error"}, status_code=500)


UNAVAILABLE_RETRY_AFTER = 15  # seconds; a sealed Vault or a database failover


async def handle_unavailable(request: Request, exc: Exception) -> Response:
    """503 with ``Retry-After`` when a backing service (the secret store, the database) is
    down: nothing was accepted, so the client retries; the process stays up."""
    log.warning("%s %s: a backing service is unavailable: %s", request.method,
                request.url.path, type(exc).__name__)
    return JSONResponse({"error": "service_unavailable"}, status_code=503,
                        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, wrong method, a malformed form body) as JSON,
    never its text/plain defaults."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body: dict[str, object] = {"error": "not_found"}
    elif exc.status_code == 405:
        body = {"error": "method_not_allowed"}
    else:
        body = {"error": "invalid_request", "error_description": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class ServerErrors:
    """A pure ASGI middleware that answers an unhandled exception with a JSON 500 and keeps
    the connection: Starlette's ServerErrorMiddleware re-raises after answering, and the
    server then closes the connection. The traceback goes to the log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            # The route's template, never the raw path (it carries ids): as the access log.
            route = getattr(scope.get("route"), "path", "unmatched")
            log.exception("%s %s failed", scope["method"], route)
            if started:  # half an answer is out: only closing the connection can end it
                raise
            response = JSONResponse({"error": "server_error"}, status_code=500)
            await response(scope, receive, send)
