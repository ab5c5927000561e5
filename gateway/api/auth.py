"""Bearer authentication for handlers: the token's subject and scopes, or an ApiError."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

from .errors import ApiError, forbidden, unauthorized


class Caller(Protocol):
    subject: str
    client_id: str
    scope: tuple[str, ...]  # as granted, aggregates included
    grants: frozenset[str]  # every individual scope that carries


class Authenticator(Protocol):
    async def __call__(self, request: Request, scope: str | None) -> Caller: ...


__all__ = ["ApiError", "Authenticator", "Caller", "forbidden", "unauthorized"]
