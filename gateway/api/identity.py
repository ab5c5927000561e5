"""Identity endpoints: /v1/userinfo, /v1/account, /v1/profiles, profile revocation (API.md s3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.accounts import AccountService, Identity
from ..services.calendars import CalendarService
from ..services.identity import account_body, profile_body, userinfo_body
from ..services.relink import RelinkLinks
from .auth import Authenticator, Caller
from .errors import not_found


async def _identity(accounts: AccountService, subject: str) -> Identity:
    # Cached: no thread hop; otherwise one query per subject, shared by concurrent requests.
    identity = await accounts.cache.load(subject, lambda: accounts.find_identity(subject))
    if identity is None:
        raise not_found()
    return identity


@dataclass(frozen=True, slots=True)
class Userinfo:
    """The ``GET /v1/userinfo`` document of a caller, wherever the API answers it (the
    endpoint itself, and writes with ``include_userinfo``), so the two never drift."""

    accounts: AccountService
    calendars: CalendarService | None = None
    relinks: RelinkLinks | None = None  # signs disconnected profiles' profile_relink_url

    async def document(self, caller: Caller) -> dict[str, Any]:
        identity = await _identity(self.accounts, caller.subject)
        listed: list[dict[str, Any]] = []
        if self.calendars is not None and "list_calendars" in caller.grants:
            listed = await to_thread.run_sync(self.calendars.list_calendars, caller.subject)
        return userinfo_body(identity, caller.subject, caller.scope, caller.grants, listed,
                             self.relinks)


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The identity endpoints over the account service, bound when the routes are built."""

    authenticate: Authenticator
    accounts: AccountService
    # The account's last calendar went: its authorization ends (oauth_server's token store).
    end_authorization: Callable[[str], Awaitable[None]]
    calendars: CalendarService | None = None
    relinks: RelinkLinks | None = None  # signs disconnected profiles' profile_relink_url

    async def userinfo(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        return JSONResponse(await Userinfo(self.accounts, self.calendars,
                                           self.relinks).document(caller))

    async def account(self, request: Request) -> Response:
        caller = await self.authenticate(request, "read_account")
        identity = await _identity(self.accounts, caller.subject)
        return JSONResponse(account_body(identity, caller.subject, caller.scope))

    async def list_profiles(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        identity = await _identity(self.accounts, caller.subject)
        body: dict[str, Any] = {"profiles": [profile_body(r, self.relinks)
                                             for r in identity.profiles]}
        return JSONResponse(body)

    async def revoke_profile(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        done = await to_thread.run_sync(self.accounts.revoke_profile, caller.subject,
                                        request.path_params["profile_id"])
        if done is False:
            raise not_found()
        if done is None:  # that was the last calendar: the authorization ends with it
            await self.end_authorization(caller.subject)
        return Response(status_code=202)

    async def link_token(self, request: Request) -> Response:
        """POST /v1/link_tokens (API.md s2.5): any valid token of the account may mint one."""
        caller = await self.authenticate(request, None)
        token = await to_thread.run_sync(self.accounts.mint_link_token, caller.subject,
                                         caller.client_id)
        return JSONResponse({"link_token": token}, headers={"Cache-Control": "no-store"})


def routes_for(authenticate: Authenticator, accounts: AccountService,
               end_authorization: Callable[[str], Awaitable[None]],
               calendars: CalendarService | None = None,
               relinks: RelinkLinks | None = None) -> list[Route]:
    """The identity routes over the account service, built once (create_app)."""
    handlers = _Handlers(authenticate, accounts, end_authorization, calendars, relinks)
    return [
        Route("/v1/link_tokens", handlers.link_token, methods=["POST"]),
        Route("/v1/userinfo", handlers.userinfo, methods=["GET"]),
        Route("/v1/account", handlers.account, methods=["GET"]),
        Route("/v1/profiles", handlers.list_profiles, methods=["GET"]),
        Route("/v1/profiles/{profile_id}/revoke", handlers.revoke_profile, methods=["POST"]),
    ]
