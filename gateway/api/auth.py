"""Bearer authentication for handlers: the token's subject and scopes, or an ApiError."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request

from .errors import ApiError, forbidden, unauthorized


class Caller(Protocol):
    """Read-only: the composition root's frozen ``Caller`` is one."""

    @property
    def subject(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def scope(self) -> tuple[str, ...]:  # as granted, aggregates included
        ...
    @property
    def grants(self) -> frozenset[str]:  # every individual scope that carries
        ...


class Authenticator(Protocol):
    async def __call__(self, request: Request, scope: str | None) -> Caller: ...


# Work was just recorded: wake the workers now rather than at their next tick.
Wake = Callable[[], Awaitable[None]]

__all__ = ["ApiError", "Authenticator", "Caller", "Wake", "forbidden", "unauthorized"]
