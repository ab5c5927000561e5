"""Identity endpoints: /v1/userinfo, /v1/account, /v1/profiles, profile revocation (API.md s3)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.accounts import AccountService, Identity
from ..services.identity import account_body, profile_body, userinfo_body
from .auth import Authenticator
from .errors import not_found


def _deps(request: Request) -> tuple[Authenticator, AccountService]:
    return request.app.state.authenticate, request.app.state.accounts


async def _identity(accounts: AccountService, subject: str) -> Identity:
    # Cached: no thread hop; otherwise one query per subject, shared by concurrent requests.
    identity = await accounts.cache.load(subject, lambda: accounts.find_identity(subject))
    if identity is None:
        raise not_found()
    return identity


async def userinfo(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, None)
    identity = await _identity(accounts, caller.subject)
    return JSONResponse(userinfo_body(identity, caller.subject, caller.scope, caller.grants))


async def account(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, "read_account")
    identity = await _identity(accounts, caller.subject)
    return JSONResponse(account_body(identity, caller.subject, caller.scope))


async def list_profiles(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, None)
    identity = await _identity(accounts, caller.subject)
    body: dict[str, Any] = {"profiles": [profile_body(r) for r in identity.profiles]}
    return JSONResponse(body)


async def revoke_profile(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, None)
    done = await to_thread.run_sync(accounts.revoke_profile, caller.subject,
                                    request.path_params["profile_id"])
    if done is False:
        raise not_found()
    if done is None:  # that was the last calendar: the authorization ends with it
        await request.app.state.end_authorization(caller.subject)
    return Response(status_code=202)


routes = [
    Route("/v1/userinfo", userinfo, methods=["GET"]),
    Route("/v1/account", account, methods=["GET"]),
    Route("/v1/profiles", list_profiles, methods=["GET"]),
    Route("/v1/profiles/{profile_id}/revoke", revoke_profile, methods=["POST"]),
]
