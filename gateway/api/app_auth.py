"""App-level authentication: ``Authorization: Bearer <client_secret>`` (API.md s0).

Cronofy's application calls (Smart Invites among them) are authenticated by the client app's
secret rather than a user's access token; the SDKs send it as a bearer token
(pycronofy ``use_api_key=True``). Wrong secrets count against the same throttle as wrong
secrets at ``/oauth/token`` (per source address), so guessing is as slow here as there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from anyio import to_thread
from starlette.requests import Request

from .errors import ApiError, unauthorized

CHALLENGE = 'Bearer realm="calgate"'
BUCKET = "client_secret_bearer"  # the throttle's client-id half: no client is named


class Throttle(Protocol):
    def retry_after(self, key: tuple[str, str]) -> int: ...
    def record(self, key: tuple[str, str]) -> None: ...


class AppAuthenticator(Protocol):
    async def __call__(self, request: Request) -> str:  # the client id
        ...


@dataclass(frozen=True, slots=True)
class ClientSecretAuth:
    """Finds the client app a bearer secret belongs to, or answers 401 (429 when throttled)."""

    find_client: Callable[[str], str | None]  # secret -> client id (blocking)
    throttle: Throttle

    async def __call__(self, request: Request) -> str:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or " " in secret:
            raise unauthorized(CHALLENGE)
        key = (BUCKET, request.client.host if request.client else "")
        wait = await to_thread.run_sync(self.throttle.retry_after, key)
        if wait:
            raise ApiError(429, {"error": "too_many_requests"}, {"Retry-After": str(wait)})
        client_id = await to_thread.run_sync(self.find_client, secret)
        if client_id is None:
            await to_thread.run_sync(self.throttle.record, key)
            raise unauthorized(f'{CHALLENGE}, error="invalid_token"')
        return client_id
