"""The HTTP edge of observability, as a pure ASGI middleware: every request gets an id
(the caller's ``X-Request-Id`` when it is a sane token, else a new one) that every log line
written while serving it carries and the response echoes; its latency goes to the
histogram under its route template; and one access line is logged, with the template,
never the raw path or query (ids, an upstream's ``?code=``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics
from .logs import request_id

log = logging.getLogger("calgate.access")
HEADER = b"x-request-id"
SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: debug lines


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or uuid.uuid4().hex
        # Not reset afterwards: the request's task ends with it, and uvicorn's report of an
        # unhandled exception, written after we return, still carries the id.
        request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _finish(scope, status, time.perf_counter() - started)


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            text = value.decode("latin-1")
            return text if SANE.fullmatch(text) else None
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request (``unmatched`` for 404s)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


def _finish(scope: Scope, status: int, seconds: float) -> None:
    method, route = scope["method"], route_template(scope)
    metrics.observe_request(method, route, status, seconds)
    level = logging.DEBUG if route in QUIET else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "%s %s %d", method, route, status, extra={
            "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 1)})
