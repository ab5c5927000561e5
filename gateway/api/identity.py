"""Identity endpoints: /v1/userinfo, /v1/account, /v1/profiles, profile revocation (API.md s3)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.accounts import AccountService
from ..services.identity import account_body, profile_body, userinfo_body
from .auth import Authenticator
from .errors import not_found


def _deps(request: Request) -> tuple[Authenticator, AccountService]:
    return request.app.state.authenticate, request.app.state.accounts


async def userinfo(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, None)
    body = await to_thread.run_sync(userinfo_body, accounts, caller.subject, caller.scope,
                                    caller.grants)
    if body is None:
        raise not_found()
    return JSONResponse(body)


async def account(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, "read_account")
    body = await to_thread.run_sync(account_body, accounts, caller.subject, caller.scope)
    if body is None:
        raise not_found()
    return JSONResponse(body)


async def list_profiles(request: Request) -> Response:
    authenticate, accounts = _deps(request)
    caller = await authenticate(request, None)
    rows = await to_thread.run_sync(accounts.list_profiles, caller.subject)
    body: dict[str, Any] = {"profiles": [profile_body(r) for r in rows]}
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
