"""One exception tree for the /v1 API, rendered once into the JSON bodies of API.md."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
