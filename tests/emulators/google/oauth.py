"""Google's OAuth 2.0 endpoints as the emulator plays them: the consent page
(``/o/oauth2/v2/auth``, plain HTML for a browser or Playwright), the token endpoint
(authorization_code with PKCE S256, refresh_token) and the revocation endpoint.

Like Google: a refresh token comes only with ``access_type=offline`` and only on the first
consent of a user to an app (or with ``prompt=consent``); the user may untick scopes, and the
token response's ``scope`` then lists only what was granted; ``include_granted_scopes=true``
adds what the user granted the app before; revoking any token of a grant revokes the grant.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .directory import scopes as directory_scopes
from .discovery import scope_descriptions

OTHER_SCOPES = {"openid": "Associate you with your personal info on Google",
                "email": "See your primary Google Account email address",
                "profile": "See your personal info, including any personal info you've "
                           "made publicly available"}


@dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: tuple[str, ...]


@dataclass
class AuthRequest:
    """A validated /o/oauth2/v2/auth request waiting for the user's decision."""

    app: App
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    challenge: str
    offline: bool
    include_granted: bool
    prompt: set[str]
    login_hint: str


@dataclass
class Code:
    app: App
    redirect_uri: str
    challenge: str
    user: str
    scopes: frozenset[str]
    offline: bool
    first_consent: bool
    expires: float
    used: bool = False


@dataclass
class Token:
    user: str
    client_id: str
    scopes: frozenset[str]
    expires: float | None
    refresh_token: str | None = None  # the refresh token an access token was minted from
    revoked: bool = False


@dataclass
class OAuthError(Exception):
    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class OAuthState:
    """Apps, pending consents, codes and tokens. Callers hold ``World.lock``."""

    access_ttl: float = 3599.0
    refresh_ttl: float | None = None
    apps: dict[str, App] = field(default_factory=dict)
    pending: dict[str, AuthRequest] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    refresh: dict[str, Token] = field(default_factory=dict)
    access: dict[str, Token] = field(default_factory=dict)
    grants: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    # -- tokens ---------------------------------------------------------------------------

    def issue_refresh(self, user: str, client_id: str, scopes: frozenset[str]) -> str:
        token = "1//" + secrets.token_urlsafe(32)
        expires = time.time() + self.refresh_ttl if self.refresh_ttl else None
        self.refresh[token] = Token(user, client_id, scopes, expires)
        key = (user, client_id)
        self.grants[key] = self.grants.get(key, frozenset()) | scopes
        return token

    def issue_access(self, user: str, client_id: str, scopes: frozenset[str],
                     refresh_token: str | None) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(32)
        self.access[token] = Token(user, client_id, scopes, time.time() + self.access_ttl,
                                   refresh_token)
        return {"access_token": token, "expires_in": int(self.access_ttl),
                "scope": " ".join(sorted(scopes)), "token_type": "Bearer"}

    def bearer(self, token: str) -> Token | None:
        found = self.access.get(token)
        if found is None or found.revoked or (found.expires or 0) < time.time():
            return None
        return found

    def expire_access(self, user: str | None = None) -> None:
        for token in self.access.values():
            if user is None or token.user == user:
                token.expires = 0.0

    def revoke(self, token: str) -> bool:
        """Revoke a token and its whole grant (access and refresh tokens)."""
        found = self.refresh.get(token) or self.access.get(token)
        if found is None or found.revoked:
            return False
        refresh_token = token if token in self.refresh else found.refresh_token
        for value in (self.refresh.get(refresh_token or ""), found):
            if value is not None:
                value.revoked = True
        for access in self.access.values():
            if refresh_token and access.refresh_token == refresh_token:
                access.revoked = True
        return True

    def revoke_user(self, user: str) -> None:
        for token in [*self.refresh.values(), *self.access.values()]:
            if token.user == user:
                token.revoked = True
        for key in [k for k in self.grants if k[0] == user]:
            del self.grants[key]

    # -- the token endpoint ---------------------------------------------------------------

    def client(self, form: dict[str, str], basic: tuple[str, str] | None) -> App:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not secrets.compare_digest(app.client_secret, secret):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return app

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(400, "unsupported_grant_type",
                             f"Invalid grant_type: {grant_type or ''}")
        app = self.client(form, basic)
        if grant_type == "authorization_code":
            return self._exchange(app, form)
        return self._refresh(app, form)

    def _exchange(self, app: App, form: dict[str, str]) -> dict[str, Any]:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires < time.time() \
                or code.app.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "Missing code verifier.")
        if s256(verifier) != code.challenge:
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        code.used = True
        refresh_token = None
        if code.offline and code.first_consent:
            refresh_token = self.issue_refresh(code.user, app.client_id, code.scopes)
        answer = self.issue_access(code.user, app.client_id, code.scopes, refresh_token)
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return answer

    def _refresh(self, app: App, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        found = self.refresh.get(token)
        if found is None or found.revoked or found.client_id != app.client_id or (
                found.expires is not None and found.expires < time.time()):
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = found.scopes
        if form.get("scope"):
            asked = frozenset(form["scope"].split())
            if not asked <= found.scopes:
                raise OAuthError(400, "invalid_scope",
                                 "Some requested scopes were invalid.")
            scopes = asked
        return self.issue_access(found.user, app.client_id, scopes, token)

    # -- the consent page -----------------------------------------------------------------

    def consent_page(self, request: AuthRequest, txn: str, error: str = "") -> str:
        described = {**scope_descriptions(), **OTHER_SCOPES, **directory_scopes()}
        rows = "\n".join(
            f'<li><input type="checkbox" id="scope-{i}" name="scope" '
            f'value="{html.escape(s)}" checked> <label for="scope-{i}">'
            f'{html.escape(described.get(s, s))}</label> <code>{html.escape(s)}</code></li>'
            for i, s in enumerate(request.scopes))
        name = html.escape(request.app.name)
        problem = f'<p id="error" role="alert">{html.escape(error)}</p>' if error else ""
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts</title></head>
<body>
<h1>Sign in with Google</h1>
<p><strong id="app-name">{name}</strong> wants access to your Google Account</p>
{problem}
<form id="consent" method="post" action="/o/oauth2/v2/auth/decision">
<input type="hidden" name="txn" value="{txn}">
<p><label for="email">Google Account (email)</label>
<input id="email" name="email" type="email" value="{html.escape(request.login_hint)}"></p>
<p>Select what <span class="app">{name}</span> can access:</p>
<ul id="scopes">
{rows}
</ul>
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" type="submit" name="decision" value="deny">Cancel</button>
</form>
</body></html>"""

    @staticmethod
    def error_page(error: str, description: str) -> str:
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error</title></head><body>
<h1>Access blocked: Authorization Error</h1>
<p id="error-description">{html.escape(description)}</p>
<p>Error 400: <span id="error-code">{html.escape(error)}</span></p>
</body></html>"""

    def redirect(self, request: AuthRequest, issuer: str, **params: str) -> str:
        query = {"state": request.state, **params, "iss": issuer}
        separator = "&" if "?" in request.redirect_uri else "?"
        return request.redirect_uri + separator + urlencode(
            {k: v for k, v in query.items() if v is not None})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
