"""Linking a Google account: the one table from Calgate's scopes to Google's, the
authorization URL (PKCE S256, offline access, incremental consent), the code exchange and
revocation. Plain httpx, so an http:// token endpoint (the emulator) needs no flag.

Least privilege: each Calgate scope maps to the narrowest Google scopes that let the
provider do what that scope allows (checked against the discovery document's per-method
scopes in tests/unit/test_google_oauth.py). ``other_calendars`` widens the event scopes from
the calendars the user owns to every calendar they can access.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx

from ..errors import InvalidInput, ProviderError, RateLimited, Unauthorized, Unavailable
from ..registry import ProviderOptions
from .config import GoogleEndpoints, settings_of
from .credentials import TOKENS

G = "https://www.googleapis.com/auth/"
CALENDAR = G + "calendar"
CALENDAR_READONLY = G + "calendar.readonly"
CALENDARLIST_READONLY = G + "calendar.calendarlist.readonly"
EVENTS = G + "calendar.events"
EVENTS_READONLY = G + "calendar.events.readonly"
EVENTS_OWNED = G + "calendar.events.owned"
EVENTS_OWNED_READONLY = G + "calendar.events.owned.readonly"
EVENTS_FREEBUSY = G + "calendar.events.freebusy"
APP_CREATED = G + "calendar.app.created"
# The Admin SDK's read-only scope for the organisation's calendar resources (rooms). Google
# has no narrower one, and the call it allows succeeds only for a Workspace administrator
# whose role may read calendar resources: asked for only with Calgate's read_resources.
RESOURCES_READONLY = G + "admin.directory.resource.calendar.readonly"


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One row of the table: a Calgate scope, the Google scopes it needs for the
    calendars the user owns and for any calendar, the API methods they must allow, why."""

    calgate_scope: str
    owned: tuple[str, ...]
    any_calendar: tuple[str, ...]
    methods: tuple[str, ...]
    why: str


SCOPE_TABLE: tuple[ScopeRule, ...] = (
    ScopeRule("read_account", (CALENDARLIST_READONLY,), (CALENDARLIST_READONLY,),
              ("calendarList.get",),
              "the primary calendar's id is the account's email: no email/openid scope"),
    ScopeRule("list_calendars", (CALENDARLIST_READONLY,), (CALENDARLIST_READONLY,),
              ("calendarList.list",), "names, colours, access roles of the calendar list"),
    ScopeRule("read_events", (EVENTS_OWNED_READONLY,), (EVENTS_READONLY,),
              ("events.list", "events.instances", "events.get", "events.watch"),
              "event contents, read only"),
    ScopeRule("read_free_busy", (EVENTS_FREEBUSY,), (EVENTS_FREEBUSY,),
              ("freebusy.query", "events.list", "events.instances", "events.watch"),
              "busy times only, never event contents (the mirror syncs times with it)"),
    ScopeRule("create_event", (EVENTS_OWNED,), (EVENTS,),
              ("events.insert", "events.patch", "events.list", "events.get",
               "events.watch"),
              "write the app's own events; the list finds one by its private property"),
    ScopeRule("delete_event", (EVENTS_OWNED,), (EVENTS,), ("events.delete", "events.get"),
              "delete the app's own events"),
    ScopeRule("create_calendar", (APP_CREATED,), (APP_CREATED,),
              ("calendars.insert", "calendarList.patch"),
              "make secondary calendars and manage only those"),
    ScopeRule("change_participation_status", (EVENTS_OWNED,), (EVENTS,),
              ("events.get", "events.patch"),
              "answer invitations in the user's own calendars"),
    # Not a Calendar API method: the Admin SDK Directory API's (admin.directory_v1).
    ScopeRule("read_resources", (RESOURCES_READONLY,), (RESOURCES_READONLY,),
              ("directory.resources.calendars.list",),
              "the Workspace's rooms (names and addresses) for GET /v1/resources"),
)
ALWAYS: tuple[str, ...] = (CALENDARLIST_READONLY,)  # every sync lists the calendars first

# Scope -> narrower scopes it makes unnecessary, for the methods of SCOPE_TABLE (checked
# against the discovery document in tests). calendar.events does not cover
# calendar.events.freebusy: freebusy.query does not accept it.
COVERS: dict[str, frozenset[str]] = {
    CALENDAR: frozenset({CALENDAR_READONLY, CALENDARLIST_READONLY, EVENTS, EVENTS_READONLY,
                         EVENTS_OWNED, EVENTS_OWNED_READONLY, EVENTS_FREEBUSY, APP_CREATED}),
    CALENDAR_READONLY: frozenset({CALENDARLIST_READONLY, EVENTS_READONLY,
                                  EVENTS_OWNED_READONLY, EVENTS_FREEBUSY}),
    EVENTS: frozenset({EVENTS_READONLY, EVENTS_OWNED, EVENTS_OWNED_READONLY}),
    EVENTS_READONLY: frozenset({EVENTS_OWNED_READONLY}),
    EVENTS_OWNED: frozenset({EVENTS_OWNED_READONLY}),
}


# Plain words for each Google scope the table uses (Google's own consent-screen wording).
DESCRIPTIONS: dict[str, str] = {
    CALENDAR: "See, edit, share, and permanently delete all the calendars you can access "
              "using Google Calendar",
    CALENDAR_READONLY: "See and download any calendar you can access using your Google "
                       "Calendar",
    CALENDARLIST_READONLY: "See the list of Google calendars you're subscribed to",
    EVENTS: "View and edit events on all your calendars",
    EVENTS_READONLY: "View events on all your calendars",
    EVENTS_OWNED: "See, create, change, and delete events on Google calendars you own",
    EVENTS_OWNED_READONLY: "See the events on Google calendars you own",
    EVENTS_FREEBUSY: "See the availability on Google calendars you have access to",
    APP_CREATED: "Make secondary Google calendars, and see, create, change, and delete "
                 "events on them",
    RESOURCES_READONLY: "View calendar resources on your domain",
}


def describe_scope(scope: str) -> str:
    """What a Google scope lets the app do, in the words Google's screen uses."""
    return DESCRIPTIONS.get(scope, scope)


def endpoints(options: ProviderOptions) -> GoogleEndpoints:
    """Google's endpoints for this deployment (its :class:`GoogleSettings`)."""
    return settings_of(options).endpoints


def upstream_scopes(calgate_scopes: Iterable[str],
                    other_calendars: bool = False) -> tuple[str, ...]:
    """The Google scopes to request for Calgate's individual ``calgate_scopes`` (expand
    aggregates first), without any another one covers; sorted."""
    rules = {rule.calgate_scope: rule for rule in SCOPE_TABLE}
    wanted = set(ALWAYS)
    for scope in calgate_scopes:
        rule = rules.get(scope)
        if rule is None:
            raise ValueError(f"no Google scope mapping for Calgate scope {scope!r}")
        wanted |= set(rule.any_calendar if other_calendars else rule.owned)
    covered = set().union(*(COVERS.get(s, frozenset()) for s in wanted))
    return tuple(sorted(wanted - covered))


def missing_scopes(needed: Iterable[str], granted: Iterable[str]) -> tuple[str, ...]:
    """The ``needed`` Google scopes the user did not grant (a granted broader scope
    counts), e.g. because they unticked them on Google's consent screen."""
    have = set(granted)
    have |= set().union(*(COVERS.get(s, frozenset()) for s in have))
    return tuple(sorted(set(needed) - have))


# -- the authorization code flow ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GoogleApp:
    """The OAuth client at Google (the deployment's, or a client app's own)."""

    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class GoogleGrant:
    refresh_token: str | None  # None when Google gave none (not offline, or no prompt)
    access_token: str
    granted_scopes: frozenset[str]
    expires_in: int


def new_code_verifier() -> str:
    """A PKCE code verifier (RFC 7636 s4.1: 43 to 128 unreserved characters)."""
    return secrets.token_urlsafe(64)


def code_challenge(code_verifier: str) -> str:
    """S256 (RFC 7636 s4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(app: GoogleApp, endpoints: GoogleEndpoints, redirect_uri: str,
                      scopes: Iterable[str], state: str, code_verifier: str,
                      login_hint: str | None = None) -> str:
    """Where to send the user: Google's consent screen for ``scopes``. ``prompt=consent``
    makes Google return a refresh token even to a user who consented before."""
    params = {"client_id": app.client_id, "redirect_uri": redirect_uri,
              "response_type": "code", "scope": " ".join(scopes), "state": state,
              "code_challenge": code_challenge(code_verifier),
              "code_challenge_method": "S256", "access_type": "offline",
              "include_granted_scopes": "true", "prompt": "consent"}
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in endpoints.auth_uri else "?"
    return endpoints.auth_uri + separator + urlencode(params)


def _token_error(response: httpx.Response, what: str) -> ProviderError:
    try:
        body = response.json()
        error, description = str(body.get("error", "")), str(body.get("error_description", ""))
    except (ValueError, AttributeError):
        error, description = "", ""
    text = f"{what}: Google answered {response.status_code} {error} {description}".strip()
    if response.status_code == 429:
        return RateLimited(text, _seconds(response.headers.get("retry-after")))
    if response.status_code >= 500:
        return Unavailable(text)
    if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
        return Unauthorized(text)
    return InvalidInput(text)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def exchange_code(app: GoogleApp, endpoints: GoogleEndpoints, code: str, redirect_uri: str,
                  code_verifier: str, *, timeout: float = 20.0) -> GoogleGrant:
    """Trade the authorization code for tokens (blocking; run it in a worker thread).
    ``refresh_token`` is None if Google sent none. The fresh access token is cached for
    the provider's first calls."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier, "client_id": app.client_id,
            "client_secret": app.client_secret}
    try:
        response = httpx.post(endpoints.token_uri, data=form, timeout=timeout,
                              headers={"Accept": "application/json"})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise Unavailable(f"code exchange: could not reach Google: {exc}") from exc
    if response.status_code != 200:
        raise _token_error(response, "code exchange")
    try:
        body = response.json()
        grant = GoogleGrant(refresh_token=str(body["refresh_token"])
                            if body.get("refresh_token") else None,
                            access_token=str(body["access_token"]),
                            granted_scopes=frozenset(str(body.get("scope", "")).split()),
                            expires_in=int(body.get("expires_in", 0)))
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable("code exchange: Google's answer is not a token response") from exc
    if grant.refresh_token:
        key = TOKENS.key(endpoints.token_uri, app.client_id, grant.refresh_token)
        expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=grant.expires_in)
        TOKENS.put(key, grant.access_token, expiry, tuple(sorted(grant.granted_scopes)))
    return grant


def revoke_token(endpoints: GoogleEndpoints, token: str, *, timeout: float = 20.0) -> None:
    """Revoke a refresh (or access) token and so the whole grant; a token Google no longer
    knows (400 invalid_token) counts as revoked. Blocking."""
    try:
        response = httpx.post(endpoints.revoke_uri, data={"token": token}, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise Unavailable(f"revoke: could not reach Google: {exc}") from exc
    if response.status_code == 200:
        return
    if response.status_code == 400:
        try:
            if response.json().get("error") == "invalid_token":
                return
        except (ValueError, AttributeError):
            pass
    raise _token_error(response, "revoke")
