"""Bearer-token validation for the calendar API (RFC 6750)."""

from __future__ import annotations

from starlette.requests import Request as HttpRequest

from . import scopes as scope_catalogue
from .grants_store import GrantStore, TokenInfo


class BearerError(Exception):
    """401 or 403 with the RFC 6750 ``WWW-Authenticate`` challenge to send."""

    def __init__(self, status: int, error: str | None, scope: str | None = None) -> None:
        super().__init__(error or "unauthorized")
        self.status = status
        self.error = error
        self.scope = scope

    @property
    def challenge(self) -> str:
        parts = ['Bearer realm="calgate"']
        if self.error:
            parts.append(f'error="{self.error}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return ", ".join(parts)


class BearerAuth:
    """Validates ``Authorization: Bearer`` on every call; query-string tokens are ignored."""

    def __init__(self, store: GrantStore) -> None:
        self.store = store

    async def authenticate(self, request: HttpRequest) -> TokenInfo:
        header = request.headers.get("authorization")
        if header is None:
            raise BearerError(401, None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or " " in token.strip():
            raise BearerError(401, "invalid_request")
        info = await self.store.load_access(token.strip())
        if info is None:
            raise BearerError(401, "invalid_token")
        return info

    @staticmethod
    def require(info: TokenInfo, scope: str) -> None:
        """403 ``insufficient_scope`` unless the token carries ``scope``."""
        if not scope_catalogue.allows(info.scope, scope):
            raise BearerError(403, "insufficient_scope", scope)
