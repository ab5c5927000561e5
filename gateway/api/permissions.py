"""``POST /v1/permissions`` (API.md s6.3) and the page where the user answers it.

The app asks with the account's bearer token and gets back the page's URL, which it sends
the user to (any browser: the URL's token is the binding to the account and the app). The
page's answer redirects to ``redirect_uri``: unchanged after approval, with
``error=access_denied`` after a decline or a refusal.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..services.permissions import (
    AppInfo,
    NotWritable,
    PendingRequest,
    PermissionService,
    RequestUnusable,
    UnknownCalendar,
)
from .auth import Authenticator
from .errors import not_found
from .params import InvalidParam, read_params
from .permission_page import render, secure_headers

FindApp = Callable[[str], AppInfo | None]
LEVELS = frozenset({"unrestricted"})
MAX_CALENDARS = 50
_UNUSABLE = {
    "unknown": ("This link does not work", "This permissions link is not valid. Ask the "
                "app for a new one."),
    "expired": ("This link has expired", "This permissions link is no longer valid. Ask "
                "the app for a new one."),
    "already answered": ("Already answered", "This request has already been answered; it "
                         "cannot be answered twice."),
}


@dataclass(frozen=True, slots=True)
class _Handlers:
    authenticate: Authenticator
    permissions: PermissionService
    find_app: FindApp
    base_url: str
    secure_cookies: bool

    @property
    def cookie(self) -> str:
        return "__Host-calgate_permissions" if self.secure_cookies else "calgate_permissions"

    async def request(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        params = await read_params(request)
        calendar_ids = _calendar_ids(params.raw("permissions"))
        redirect_uri = params.text("redirect_uri", required=True)
        app = await to_thread.run_sync(self.find_app, caller.client_id)
        if app is None or redirect_uri not in app.redirect_uris:
            raise InvalidParam("redirect_uri", "invalid",
                               "redirect_uri must be one of the app's registered redirect URIs")
        try:
            token = await to_thread.run_sync(self.permissions.request, caller.subject,
                                             caller.client_id, calendar_ids, redirect_uri)
        except UnknownCalendar:
            raise not_found() from None
        except NotWritable as exc:
            raise InvalidParam("permissions", "not_writable",
                               f"{exc.calendar_id}: {exc.reason}") from None
        url = f"{self.base_url}/permissions/{token}"
        return JSONResponse({"permissions_request": {"url": url}})

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            pending = await to_thread.run_sync(self.permissions.find, token)
        except RequestUnusable as exc:
            return _unusable(str(exc))
        app = await to_thread.run_sync(self.find_app, pending.client_id)
        if app is None:
            return _unusable("unknown")
        csrf = secrets.token_urlsafe(32)
        response = self._ask(app, pending, csrf, request.url.path)
        response.set_cookie(self.cookie, csrf, httponly=True, secure=self.secure_cookies,
                            samesite="strict", path="/")
        return response

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        sent, held = form.get("csrf_token"), request.cookies.get(self.cookie)
        if not isinstance(sent, str) or not held or not hmac.compare_digest(sent, held):
            return render("permissions_message.html", 403, app=None,
                          title="This form has expired",
                          message="Open the link from the app again and answer there.",
                          back=None)
        approve = form.get("decision") == "approve"
        try:
            pending = await to_thread.run_sync(self.permissions.answer,
                                               request.path_params["token"], approve)
        except RequestUnusable as exc:
            return _unusable(str(exc))
        app = await to_thread.run_sync(self.find_app, pending.client_id)
        if approve and not pending.approvable and app is not None:
            return self._ask(app, pending, "", request.url.path)
        target = pending.redirect_uri if approve else _with_error(pending.redirect_uri)
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(self.cookie, path="/")
        return secure_headers(response)

    def _ask(self, app: AppInfo, pending: PendingRequest, csrf: str, path: str) -> Response:
        return render("permissions_ask.html", form_target=pending.redirect_uri, app=app,
                      calendars=pending.calendars, approvable=pending.approvable,
                      csrf_token=csrf, action=path, back=_with_error(pending.redirect_uri))


def routes_for(authenticate: Authenticator, permissions: PermissionService,
               find_app: FindApp, base_url: str) -> list[Route]:
    """The permissions endpoint and page over their service, built once (create_app)."""
    handlers = _Handlers(authenticate, permissions, find_app, base_url.rstrip("/"),
                         base_url.startswith("https://"))
    return [
        Route("/v1/permissions", handlers.request, methods=["POST"]),
        Route("/permissions/{token}", handlers.page, methods=["GET"]),
        Route("/permissions/{token}", handlers.decide, methods=["POST"]),
    ]


def _calendar_ids(value: Any) -> list[str]:
    """``[{"calendar_id": …, "permission_level": "unrestricted"}, …]``."""
    if not isinstance(value, list) or not value or len(value) > MAX_CALENDARS:
        raise InvalidParam("permissions", "invalid",
                           f'permissions is a list of 1 to {MAX_CALENDARS} '
                           '{"calendar_id": …, "permission_level": "unrestricted"}')
    ids = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("calendar_id"), str) \
                or not item["calendar_id"]:
            raise InvalidParam("permissions", "invalid", "each permission needs a calendar_id")
        if item.get("permission_level") not in LEVELS:
            raise InvalidParam("permissions", "invalid_permission_level",
                               "permission_level must be unrestricted")
        ids.append(item["calendar_id"])
    return ids


def _unusable(reason: str) -> Response:
    title, message = _UNUSABLE.get(reason, _UNUSABLE["unknown"])
    status = 404 if reason == "unknown" else 410
    return render("permissions_message.html", status, app=None, title=title,
                  message=message, back=None)


def _with_error(uri: str) -> str:
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("error", "access_denied")]
    return urlunsplit(parts._replace(query=urlencode(query)))


__all__ = ["FindApp", "routes_for"]
