"""The authorization endpoint: validating ``/o/oauth2/v2/auth`` the way Google does (an
unknown client or an unregistered redirect URI is an error page, never a redirect), the
consent page, and the user's decision (a redirect with ``code`` or ``error``)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from .directory import scopes as directory_scopes
from .discovery import known_scopes
from .oauth import OTHER_SCOPES, AuthRequest, Code, OAuthState
from .state import World

CODE_TTL = 600.0


@dataclass(frozen=True)
class Page:
    status: int
    html: str


@dataclass(frozen=True)
class Redirect:
    location: str


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name) or [""]
    return values[0]


def authorize(oauth: OAuthState, query: dict[str, list[str]]) -> Page:
    """GET /o/oauth2/v2/auth: the consent page, or an error page."""
    app = oauth.apps.get(_one(query, "client_id"))
    if app is None:
        return Page(401, oauth.error_page("invalid_client", "The OAuth client was not found."))
    redirect_uri = _one(query, "redirect_uri")
    if redirect_uri not in app.redirect_uris:
        return Page(400, oauth.error_page(
            "redirect_uri_mismatch", f"You can't sign in to this app because it doesn't "
            f"comply with Google's OAuth 2.0 policy. redirect_uri={redirect_uri}"))
    problem = _problem(query)
    if problem:
        return Page(400, oauth.error_page("invalid_request", problem))
    scopes = tuple(dict.fromkeys(_one(query, "scope").split()))
    unknown = [s for s in scopes if s not in known_scopes() and s not in OTHER_SCOPES
               and s not in directory_scopes()]
    if unknown:
        return Page(400, oauth.error_page("invalid_scope",
                                          f"Some requested scopes were invalid: {unknown}"))
    request = AuthRequest(app, redirect_uri, scopes, query.get("state", [None])[0],
                          _one(query, "code_challenge"),
                          _one(query, "access_type") == "offline",
                          _one(query, "include_granted_scopes") == "true",
                          set(_one(query, "prompt").split()), _one(query, "login_hint"))
    txn = secrets.token_urlsafe(16)
    oauth.pending[txn] = request
    return Page(200, oauth.consent_page(request, txn))


def _problem(query: dict[str, list[str]]) -> str:
    if _one(query, "response_type") != "code":
        return f"Invalid response_type: {_one(query, 'response_type')} (this app uses code)"
    if not _one(query, "scope"):
        return "Missing required parameter: scope"
    if _one(query, "code_challenge_method") != "S256":
        return "Invalid code_challenge_method: PKCE S256 is required"
    if not 43 <= len(_one(query, "code_challenge")) <= 128:
        return "Invalid code_challenge"
    if _one(query, "access_type") not in ("", "online", "offline"):
        return f"Invalid access_type: {_one(query, 'access_type')}"
    if _one(query, "include_granted_scopes") not in ("", "true", "false"):
        return "Invalid include_granted_scopes"
    prompt = set(_one(query, "prompt").split())
    if not prompt <= {"none", "consent", "select_account"} or ("none" in prompt
                                                              and len(prompt) > 1):
        return f"Invalid prompt: {_one(query, 'prompt')}"
    return ""


def decide(world: World, oauth: OAuthState, form: dict[str, list[str]], issuer: str,
           auto_create_users: bool) -> Page | Redirect:
    """POST of the consent page: Allow (with the ticked scopes) or Cancel."""
    request = oauth.pending.get(_one(form, "txn"))
    if request is None:
        return Page(400, oauth.error_page("invalid_request", "This sign-in has expired."))
    if _one(form, "decision") != "allow":
        del oauth.pending[_one(form, "txn")]
        return Redirect(oauth.redirect(request, issuer, error="access_denied"))
    email = _one(form, "email").strip().lower()
    if email not in world.users:
        if not auto_create_users or "@" not in email:
            return Page(200, oauth.consent_page(request, _one(form, "txn"),
                                                "Couldn't find your Google Account"))
        world.add_user(email)
    del oauth.pending[_one(form, "txn")]
    ticked = frozenset(form.get("scope", [])) & frozenset(request.scopes)
    previous = oauth.grants.get((email, request.app.client_id), frozenset())
    granted = ticked | previous if request.include_granted else ticked
    first = (email, request.app.client_id) not in oauth.grants or "consent" in request.prompt
    code = secrets.token_urlsafe(24)
    oauth.codes[code] = Code(request.app, request.redirect_uri, request.challenge, email,
                             granted, request.offline, first, time.time() + CODE_TTL)
    oauth.grants[(email, request.app.client_id)] = previous | ticked
    return Redirect(oauth.redirect(request, issuer, code=code,
                                   scope=" ".join(sorted(granted))))
