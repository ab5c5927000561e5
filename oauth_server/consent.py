"""The authorization endpoint and the consent screen (server-rendered, no JavaScript).

Flow: ``GET /oauth/authorize`` validates the request and stores it server-side, then
``/oauth/flow/{id}`` walks the user through choose provider -> connect -> review -> Allow or
Deny. Every POST carries ``csrf_token`` bound to the browser session and the flow. Documented
form fields: ``csrf_token``, ``provider``, the provider's own connect fields, ``decision``
(``allow`` | ``deny``).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidRequestError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import scopes as scope_catalogue
from .flows import Flow, FlowStore
from .ports import (
    ConnectElsewhere,
    ConnectFailed,
    LinkTokenInvalid,
    PendingLink,
    ProviderChoice,
    UpstreamRequest,
    UpstreamScopesMissing,
)
from .registry import Client
from .server import CalgateServer, Request, printable

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
UPSTREAM_STATE = "calgate/upstream-state"
CHALLENGE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class ConsentScreen:
    """Handlers for the authorization endpoint and the consent pages."""

    def __init__(self, server: CalgateServer, flows: FlowStore, secure_cookies: bool) -> None:
        self.server = server
        self.flows = flows
        self.secure = secure_cookies
        prefix = "__Host-" if secure_cookies else ""
        self.session_cookie = f"{prefix}calgate_session"
        self.link_cookie = f"{prefix}calgate_link"

    # -- GET /oauth/authorize ---------------------------------------------------------
    async def authorize(self, request: HttpRequest) -> Response:
        items = list(request.query_params.multi_items())
        oauth_request = Request("GET", str(request.url), items, dict(request.headers))
        result = await to_thread.run_sync(self._validate, oauth_request)
        if isinstance(result, Response):
            return result
        client, link_token = result
        session = request.cookies.get(self.session_cookie) or secrets.token_urlsafe(32)
        data = oauth_request.payload.data
        flow_id = await to_thread.run_sync(lambda: self.flows.start(
            session_hash=self.server.keys.browser_digest(session), client_id=client.client_id,
            redirect_uri=data["redirect_uri"], scope=" ".join(scope_catalogue.parse(data["scope"])),
            state=data.get("state"), code_challenge=data.get("code_challenge"),
            provider_name=self._preselect(client.client_id, data.get("provider_name")),
            avoid_linking=_truthy(data.get("avoid_linking")), link_token=link_token))
        response = RedirectResponse(f"/oauth/flow/{flow_id}", status_code=303)
        self._set_session(response, session)
        return secure_headers(response)

    def _validate(self, request: Request) -> tuple[Client, str | None] | Response:
        payload = request.payload
        repeated = payload.repeated()
        client_id, redirect_uri = payload.data.get("client_id"), payload.data.get("redirect_uri")
        client = self.server.registry.find(client_id) if client_id else None
        if client is None:
            return self.error_page("This app is not registered with Calgate.", 400)
        if "redirect_uri" in repeated or "client_id" in repeated:
            return self.error_page("The request named its return address more than once.", 400)
        if not redirect_uri or not client.check_redirect_uri(redirect_uri):
            return self.error_page("The app asked to return to an address it has not "
                                   "registered, so Calgate will not send you there.", 400)
        try:
            if repeated:
                raise InvalidRequestError(f"Repeated parameter: {printable(repeated[0])}")
            response_type = payload.data.get("response_type")
            if not response_type:
                raise InvalidRequestError("Missing 'response_type'.")
            if response_type != "code":
                # Raised here: Authlib's own error puts the raw value in the description.
                raise UnsupportedResponseTypeError(printable(response_type))
            self.server.get_consent_grant(request)
            _check_challenge(client, payload.data)
            link_token = self._link_token(client, payload.data.get("link_token"))
        except OAuth2Error as error:
            error.redirect_uri, error.state = redirect_uri, payload.data.get("state")
            return secure_headers(RedirectResponse(self.server.error_redirect(error), 303))
        return client, link_token

    def _link_token(self, client: Client, token: str | None) -> str | None:
        """Explicit linking (API.md s2.1): the host's reference of a live link token minted
        for this client app; an empty parameter counts as absent."""
        if not token:
            return None
        found = self.server.host.find_link_token(client.client_id, token)
        if found is None:
            raise InvalidRequestError("The 'link_token' is invalid, expired or already used.")
        return found

    def _preselect(self, client_id: str, provider_name: str | None) -> str | None:
        choices = {c.name: c for c in self.server.host.provider_choices(client_id)}
        choice = choices.get(provider_name or "")
        return choice.name if choice is not None and choice.available else None

    # -- GET /oauth/flow/{id} ---------------------------------------------------------
    async def show(self, request: HttpRequest) -> Response:
        flow, session = await self._flow(request)
        if isinstance(flow, Response):
            return flow
        return await to_thread.run_sync(self._render_step, flow, session, None)

    def _render_step(self, flow: Flow, session: str, error: str | None,
                     typed: dict[str, str] | None = None,
                     elsewhere: str | None = None) -> Response:
        client = self.server.registry.find(flow.client_id)
        assert client is not None
        choices = list(self.server.host.provider_choices(flow.client_id))
        context: dict[str, Any] = {
            "client": client, "branding": client.branding, "flow": flow, "error": error,
            "csrf_token": self.server.keys.csrf_token(session, flow.id),
            "action": f"/oauth/flow/{flow.id}", "typed": typed or {},
        }
        choice = next((c for c in choices if c.name == flow.provider_name), None)
        if flow.relink is not None:
            return self._relink_step(flow, choice, context)
        if choice is None:  # none chosen yet, or no longer offered (its app was removed)
            return self.page("choose.html", context | {"choices": choices})
        if flow.pending is None:  # ``elsewhere``: the provider offered instead, if available
            switch = next((c for c in choices if c.name == elsewhere and c.available), None)
            return self.page("connect.html", context | {"choice": choice, "switch": switch})
        may, promises = scope_catalogue.describe(flow.scope.split())
        context |= {"choice": choice, "pending": flow.pending, "may": may, "promises": promises}
        return self.page("consent.html", context, form_target=flow.redirect_uri)

    # -- POST /oauth/flow/{id}/provider -----------------------------------------------
    async def choose(self, request: HttpRequest) -> Response:
        flow, session, form = await self._post(request)
        if isinstance(flow, Response):
            return flow
        if flow.relink is not None:  # a relink reconnects the profile's own provider
            return _see_other(f"/oauth/flow/{flow.id}")
        name = form.get("provider") or None
        choices = {c.name: c for c in self.server.host.provider_choices(flow.client_id)}
        if name is not None and (name not in choices or not choices[name].available):
            return await to_thread.run_sync(self._render_step, flow, session,
                                            "That calendar provider is not available.")
        await to_thread.run_sync(self._reset, flow, name)
        return _see_other(f"/oauth/flow/{flow.id}")

    def _reset(self, flow: Flow, provider_name: str | None) -> None:
        if flow.pending is not None:
            self.server.host.discard(flow.pending)
        self.flows.choose_provider(flow.id, provider_name)

    # -- POST /oauth/flow/{id}/connect ------------------------------------------------
    async def connect(self, request: HttpRequest) -> Response:
        flow, session, form = await self._post(request)
        if isinstance(flow, Response):
            return flow
        if flow.provider_name is None:
            return _see_other(f"/oauth/flow/{flow.id}")
        values = {k: v for k, v in form.items() if k != "csrf_token"}
        try:
            pending = await to_thread.run_sync(
                self.server.host.connect, flow.provider_name, values, flow.id)
        except ConnectFailed as exc:
            choice = self._choice(flow.client_id, flow.provider_name)
            secret = {f.name for f in choice.fields if f.kind == "password"} if choice else set()
            typed = {k: v for k, v in values.items() if k not in secret}
            return await to_thread.run_sync(self._render_step, flow, session, str(exc), typed,
                                            exc.provider if isinstance(
                                                exc, ConnectElsewhere) else None)
        return await to_thread.run_sync(self._advance, flow, session, pending)

    def _advance(self, flow: Flow, session: str, pending: PendingLink) -> Response:
        """A verified account: on to the review (a relink finishes here instead)."""
        if flow.relink is not None:
            return self._finish_relink(flow, session, pending)
        self.flows.set_pending(flow.id, pending)
        return _see_other(f"/oauth/flow/{flow.id}")

    # -- GET /oauth/flow/{id}/upstream -----------------------------------------------
    async def upstream(self, request: HttpRequest) -> Response:
        """Send the user to the chosen provider's OAuth server (an upstream redirect).

        A plain link, not a form: a form's ``form-action`` policy would also govern the
        redirect that follows it. Nothing is stored: the PKCE verifier and the flow travel in
        ``state``, sealed (authenticated encryption) and bound to this flow and browser.
        """
        flow, session = await self._flow(request)
        if isinstance(flow, Response):
            return flow
        choice = self._choice(flow.client_id, flow.provider_name)
        if choice is None or not choice.redirect:
            return _see_other(f"/oauth/flow/{flow.id}")
        upstream = self._upstream_request(flow, choice.name, secrets.token_urlsafe(48))
        try:
            url = await to_thread.run_sync(self.server.host.upstream_authorization_url,
                                           choice.name, upstream)
        except ConnectFailed as exc:
            return await to_thread.run_sync(self._render_step, flow, session, str(exc))
        return secure_headers(RedirectResponse(url, status_code=303))

    def _upstream_request(self, flow: Flow, provider: str, verifier: str) -> UpstreamRequest:
        state = self.server.keys.seal(UPSTREAM_STATE, {
            "f": flow.id, "p": provider, "v": verifier,
            "exp": int(time.time()) + self.flows.ttl})
        return UpstreamRequest(flow_id=flow.id, client_id=flow.client_id, scope=flow.scope,
                               redirect_uri=self.callback_uri(provider), state=state,
                               code_verifier=verifier)

    def callback_uri(self, provider: str) -> str:
        """What to register at the provider as the OAuth redirect URI."""
        return f"{self.server.issuer}/oauth/callback/{provider}"

    # -- GET /oauth/callback/{provider} ------------------------------------------------
    async def callback(self, request: HttpRequest) -> Response:
        """The provider sends the user back here with ``code`` (or ``error``) and our state."""
        provider = request.path_params["provider"]
        sealed = request.query_params.get("state") or ""
        data = self.server.keys.unseal(UPSTREAM_STATE, sealed)
        if data is None or data.get("p") != provider or data.get("exp", 0) < time.time():
            return self.error_page("This sign-in link has expired. Go back to the app and "
                                   "start again.", 400)
        flow, session = await self._flow(request, str(data["f"]))
        if isinstance(flow, Response):
            return flow
        if flow.provider_name != provider:
            return _see_other(f"/oauth/flow/{flow.id}")
        choice = self._choice(flow.client_id, provider)
        label = choice.display_name if choice else provider
        code = request.query_params.get("code")
        if request.query_params.get("error") or not code:
            refused = await to_thread.run_sync(self.server.host.upstream_refused, provider,
                                               dict(request.query_params))
            message = " ".join(filter(None, (
                f"{label} did not give access, so nothing was linked.", refused,
                "You can try again, or choose a different calendar.")))
            return await to_thread.run_sync(self._render_step, flow, session, message)
        upstream = UpstreamRequest(flow_id=flow.id, client_id=flow.client_id, scope=flow.scope,
                                   redirect_uri=self.callback_uri(provider), state=sealed,
                                   code_verifier=str(data["v"]))
        try:
            pending = await to_thread.run_sync(self.server.host.upstream_connect, provider,
                                               upstream, code)
        except UpstreamScopesMissing as exc:
            return await to_thread.run_sync(self._missing_page, flow, session, label, exc)
        except ConnectFailed as exc:
            return await to_thread.run_sync(self._render_step, flow, session, str(exc))
        return await to_thread.run_sync(self._advance, flow, session, pending)

    def _missing_page(self, flow: Flow, session: str, label: str,
                      exc: UpstreamScopesMissing) -> Response:
        client = self.server.registry.find(flow.client_id)
        assert client is not None
        return self.page("missing_scopes.html", {
            "client": client, "branding": client.branding, "flow": flow, "label": label,
            "choice": self._choice(flow.client_id, flow.provider_name),
            "message": str(exc), "missing": exc.missing,
            "csrf_token": self.server.keys.csrf_token(session, flow.id),
            "action": f"/oauth/flow/{flow.id}"})

    def _choice(self, client_id: str, name: str | None) -> ProviderChoice | None:
        return next((c for c in self.server.host.provider_choices(client_id)
                     if c.name == name), None)

    # -- POST /oauth/flow/{id}/decision -----------------------------------------------
    async def decide(self, request: HttpRequest) -> Response:
        flow, session, form = await self._post(request)
        if isinstance(flow, Response):
            return flow
        decision = form.get("decision")
        if decision not in {"allow", "deny"} or (decision == "allow" and flow.pending is None):
            return await to_thread.run_sync(self._render_step, flow, session,
                                            "Choose Allow or Deny.")
        link = request.cookies.get(self.link_cookie) or secrets.token_urlsafe(32)
        location = await to_thread.run_sync(self._decide, flow, decision == "allow", link)
        if location is None:
            return self.error_page("This request was already answered.", 400)
        response = _see_other(location)
        # A link token named the account: this browser's own linking cookie is left as it is.
        if decision == "allow" and not flow.avoid_linking and flow.link_token is None:
            response.set_cookie(self.link_cookie, link, max_age=365 * 86400, path="/",
                                secure=self.secure, httponly=True, samesite="lax")
        return response

    def _decide(self, flow: Flow, allow: bool, link: str) -> str | None:
        if not self.flows.finish(flow.id):
            return None
        if not allow:
            if flow.pending is not None:
                self.server.host.discard(flow.pending)
            error = AccessDeniedError(redirect_uri=flow.redirect_uri, state=flow.state)
            return self.server.error_redirect(error)
        assert flow.pending is not None
        link_key = None if flow.avoid_linking else self.server.keys.browser_digest(
            f"{flow.client_id}\x00{link}")
        try:
            profile = self.server.host.link(flow.client_id, flow.pending, link_key, flow.scope,
                                            link_token=flow.link_token)
        except LinkTokenInvalid:  # used by another flow, or expired while the user decided
            self.server.host.discard(flow.pending)
            return self.server.error_redirect(InvalidRequestError(
                "The 'link_token' is invalid, expired or already used.",
                redirect_uri=flow.redirect_uri, state=flow.state))
        code = self.server.store.save_code(
            client_id=flow.client_id, redirect_uri=flow.redirect_uri, scope=flow.scope,
            subject=profile.subject, code_challenge=flow.code_challenge,
            linking_profile={"provider_name": profile.provider_name,
                             "provider_service": profile.provider_service,
                             "profile_id": profile.profile_id,
                             "profile_name": profile.profile_name})
        params = [("code", code)]
        if flow.state:
            params.append(("state", flow.state))
        params.append(("iss", self.server.issuer))
        return str(add_params_to_uri(flow.redirect_uri, params))

    # -- GET /oauth/relink/{token} -----------------------------------------------------
    async def relink(self, request: HttpRequest) -> Response:
        """A disconnected profile's ``profile_relink_url``, opened in any browser: a flow that
        reconnects that profile (same upstream account only) and issues no code.

        ``redirect_uri`` (optional) must be one the app registered: after the reconnection
        the browser is sent there, with nothing added; without it a page says it is done.
        """
        target = await to_thread.run_sync(self.server.host.relink_target,
                                          request.path_params["token"])
        if target is None:
            return self.error_page("This reconnect link has expired, or the calendar was "
                                   "already reconnected. If it still needs reconnecting, get "
                                   "a new link from the app.", 404)
        client = await to_thread.run_sync(self.server.registry.find, target.client_id)
        back = request.query_params.get("redirect_uri") or ""
        if client is None or (back and not client.check_redirect_uri(back)):
            return self.error_page("The app asked to return to an address it has not "
                                   "registered, so Calgate will not send you there.", 400)
        session = request.cookies.get(self.session_cookie) or secrets.token_urlsafe(32)
        flow_id = await to_thread.run_sync(lambda: self.flows.start(
            session_hash=self.server.keys.browser_digest(session), client_id=target.client_id,
            redirect_uri=back, scope=target.scope, state=None, code_challenge=None,
            provider_name=target.provider_name, avoid_linking=True, relink=target.reference))
        response = _see_other(f"/oauth/flow/{flow_id}")
        self._set_session(response, session)
        return response

    def _relink_step(self, flow: Flow, choice: ProviderChoice | None,
                     context: dict[str, Any]) -> Response:
        assert flow.relink is not None
        target = self.server.host.find_relink(flow.relink)
        if target is None:
            return self.error_page("This calendar was already reconnected, or removed, since "
                                   "this link was made. Nothing more to do here.", 400)
        if choice is None or not choice.available:
            return self.error_page("This kind of calendar cannot be reconnected on this "
                                   "server at the moment. Please tell the app's support "
                                   "team.", 400)
        return self.page("relink.html", context | {"choice": choice, "target": target})

    def _finish_relink(self, flow: Flow, session: str, pending: PendingLink) -> Response:
        assert flow.relink is not None
        target = self.server.host.find_relink(flow.relink)
        if target is None:
            self.server.host.discard(pending)
            return self._render_step(flow, session, None)
        try:
            self.server.host.relink(target, pending)
        except ConnectFailed as exc:  # another account (RelinkRefused), or gone meanwhile
            return self._render_step(flow, session, str(exc))
        self.flows.finish(flow.id)
        if flow.redirect_uri:
            return _see_other(flow.redirect_uri)
        client = self.server.registry.find(flow.client_id)
        assert client is not None
        return self.page("relinked.html", {"client": client, "branding": client.branding,
                                           "target": target})

    # -- helpers ----------------------------------------------------------------------
    async def _flow(self, request: HttpRequest, flow_id: str | None = None
                    ) -> tuple[Flow | Response, str]:
        session = request.cookies.get(self.session_cookie, "")
        flow = await to_thread.run_sync(self.flows.find,
                                        flow_id or request.path_params["flow_id"])
        if flow is None or flow.expired or flow.finished or not session or \
                flow.session_hash != self.server.keys.browser_digest(session):
            return self.error_page("This sign-in link has expired or belongs to another "
                                   "browser. Go back to the app and start again.", 400), session
        return flow, session

    async def _post(self, request: HttpRequest) -> tuple[Flow | Response, str, dict[str, str]]:
        flow, session = await self._flow(request)
        form_data = await request.form()
        form = {k: v for k, v in form_data.items() if isinstance(v, str)}
        if isinstance(flow, Response):
            return (self.error_page("This form has expired.", 403) if request.method == "POST"
                    else flow), session, form
        expected = self.server.keys.csrf_token(session, flow.id)
        if not secrets.compare_digest(form.get("csrf_token", ""), expected):
            return self.error_page("The form could not be verified. Go back to the app and "
                                   "start again.", 403), session, form
        return flow, session, form

    def page(self, template: str, context: dict[str, Any], status: int = 200,
             form_target: str | None = None) -> Response:
        html = TEMPLATES.get_template(template).render(**context)
        return secure_headers(HTMLResponse(html, status_code=status), form_target)

    def error_page(self, message: str, status: int) -> Response:
        return self.page("error.html", {"message": message, "branding": None}, status)

    def _set_session(self, response: Response, session: str) -> None:
        response.set_cookie(self.session_cookie, session, path="/", secure=self.secure,
                            httponly=True, samesite="lax")


def secure_headers(response: Response, form_target: str | None = None) -> Response:
    """OAUTH.md 30-32: no framing, no caching, no referrer, nothing third-party."""
    form_action = "'self'"
    if form_target:
        parts = urlsplit(form_target)
        form_action += f" {parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _see_other(location: str) -> Response:
    return secure_headers(RedirectResponse(location, status_code=303))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes"}


def _check_challenge(client: Client, data: dict[str, str]) -> None:
    """S256 only; required for public clients and clients not flagged legacy (OAUTH.md 22-24)."""
    challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequestError("'code_challenge_method' without 'code_challenge'.")
        if client.requires_pkce:
            raise InvalidRequestError("PKCE is required: send 'code_challenge' (S256).")
        return
    if method != "S256":
        raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
    if not 43 <= len(challenge) <= 128 or not set(challenge) <= CHALLENGE_CHARS:
        raise InvalidRequestError("Invalid 'code_challenge'.")


__all__ = ["ConsentScreen", "ProviderChoice", "secure_headers"]
