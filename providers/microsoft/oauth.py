"""Linking a Microsoft account and refreshing its grant, through msal.

The authorization code flow with PKCE (S256), ``state`` and ``nonce``: msal's
``initiate_auth_code_flow`` makes all three and returns a flow the caller keeps (in the
linking session) until Microsoft redirects back; ``acquire_token_by_auth_code_flow`` then
checks the state, sends the verifier and checks the ID token's nonce. The authority is the
configured base plus the tenant (``common`` serves work or school and personal accounts).

msal's HTTP goes through a ``requests.Session`` of our own with ``trust_env=False``: with the
default, ``REQUESTS_CA_BUNDLE`` and proxy variables of the environment override the CA
bundle msal is given, so a configured bundle would be silently ignored. msal is blocking:
the async helpers run it in a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio.to_thread
import msal  # type: ignore[import-untyped]
import requests

from ..errors import Forbidden, InvalidInput
from .config import GraphSettings
from .credentials import TOKENS, AccountSecrets, TokenCache
from .errors import from_identity, translated
from .scopes import describe_scope, missing_scopes, short


@dataclass(frozen=True, slots=True)
class EntraApp:
    """The Entra app registration the grant is made for: the deployment's, or a client
    app's own (then Microsoft's consent page shows that app's name)."""

    client_id: str
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class LinkStart:
    """Where to send the user, and the flow to keep until they come back (JSON-safe)."""

    url: str
    state: str
    flow: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MicrosoftGrant:
    """A finished link: the secrets to store and who the account is (from the ID token)."""

    secrets: AccountSecrets
    username: str  # preferred_username: the sign-in name, usually the address
    display_name: str
    object_id: str  # oid: stable across renames


# Granted with every sign-in; never asked for again on a refresh (msal adds them itself).
IDENTITY_SCOPES = frozenset({"offline_access", "openid", "profile", "email"})
_APPS: dict[tuple[str, str, str | None, str | None], Any] = {}
_APPS_LOCK = threading.Lock()


def session(settings: GraphSettings) -> requests.Session:
    """msal's HTTP session: our CA bundle (or the system's), never the environment's."""
    http = requests.Session()
    http.trust_env = False
    http.verify = settings.ca_bundle or True
    return http


def application(settings: GraphSettings, app: EntraApp) -> Any:
    """A ConfidentialClientApplication (PublicClientApplication without a secret), one per
    authority and app for the process: msal fetches the OpenID configuration when it is
    built. Blocking."""
    key = (settings.authority, app.client_id, app.client_secret, settings.ca_bundle)
    with _APPS_LOCK:
        held = _APPS.get(key)
    if held is not None:
        return held
    options: dict[str, Any] = {"authority": settings.authority, "http_client": session(settings),
                               "instance_discovery": settings.is_microsoft}
    with translated("sign-in configuration"):
        try:
            built = (msal.ConfidentialClientApplication(
                app.client_id, client_credential=app.client_secret, **options)
                if app.client_secret else msal.PublicClientApplication(app.client_id,
                                                                        **options))
        except ValueError as exc:  # msal reports an unusable authority this way
            raise InvalidInput(f"Microsoft sign-in is misconfigured: {exc}") from exc
    with _APPS_LOCK:
        return _APPS.setdefault(key, built)


def start_link(settings: GraphSettings, app: EntraApp, graph_scopes: Iterable[str],
               redirect_uri: str, login_hint: str | None = None, state: str | None = None
               ) -> LinkStart:
    """The authorize URL (PKCE, state, nonce, ``prompt=select_account`` so the user can pick
    which Microsoft account to link). Blocking."""
    client = application(settings, app)
    with translated("sign-in"), warnings.catch_warnings():
        # msal recommends response_mode=form_post; the linking callback is a GET that reads
        # the query (as for every redirect provider), and PKCE plus state already bind the
        # code to this flow.
        warnings.filterwarnings("ignore", "response_mode='form_post'", UserWarning)
        flow = client.initiate_auth_code_flow(
            list(graph_scopes), redirect_uri=redirect_uri, login_hint=login_hint,
            prompt="select_account", response_mode="query", state=state)
    return LinkStart(url=str(flow["auth_uri"]), state=str(flow["state"]), flow=dict(flow))


def authorization_url(settings: GraphSettings, app: EntraApp, graph_scopes: Iterable[str],
                      redirect_uri: str, state: str, code_verifier: str, nonce: str) -> str:
    """The authorize URL for a flow whose PKCE verifier and nonce the caller keeps (the
    gateway's sealed state carries them across the redirect, so nothing is held here).
    msal builds the URL; its own random verifier and nonce are swapped for the caller's,
    in the form msal itself sends and later checks: the S256 challenge, and the nonce's
    SHA-256 hex digest. Blocking."""
    start = start_link(settings, app, graph_scopes, redirect_uri, state=state)
    parts = urlsplit(start.url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["code_challenge"] = _challenge(code_verifier)
    query["code_challenge_method"] = "S256"
    query["nonce"] = hashlib.sha256(nonce.encode("ascii")).hexdigest()
    return urlunsplit(parts._replace(query=urlencode(query)))


def redeem_code(settings: GraphSettings, app: EntraApp, graph_scopes: Iterable[str],
                redirect_uri: str, code: str, code_verifier: str, nonce: str
                ) -> dict[str, Any]:
    """msal's answer to the code of a flow begun by :func:`authorization_url`: the flow is
    made again with the same scopes, verifier and nonce, so msal sends the verifier and
    checks the ID token's nonce. Identity errors raise (:func:`.errors.from_identity`)."""
    state = "calgate"  # the gateway checked the real state; msal wants one on both sides
    flow = start_link(settings, app, graph_scopes, redirect_uri, state=state).flow
    flow |= {"code_verifier": code_verifier, "nonce": nonce}
    client = application(settings, app)
    with translated("code exchange"):
        try:
            result = client.acquire_token_by_auth_code_flow(flow, {"code": code,
                                                                   "state": state})
        except ValueError as exc:  # the ID token's nonce is not this flow's
            raise InvalidInput(f"the sign-in answer does not match this link: {exc}") from exc
    if "error" in result:
        raise from_identity(result, "code exchange", linking=True)
    return dict(result)


def granted(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The permissions a token answer carries, without the resource prefix."""
    return tuple(sorted({short(s) for s in str(result.get("scope", "")).split()}))


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def finish_link(settings: GraphSettings, app: EntraApp, flow: Mapping[str, Any],
                query: Mapping[str, str], needed: Iterable[str]) -> MicrosoftGrant:
    """Trade the redirect's code for tokens. A refused consent, a tenant needing an
    administrator or an unwelcome account type raise the error kinds of :mod:`.errors`
    (for the page that explains them); a grant lacking ``needed`` permissions (unticked,
    or limited by the tenant) is Forbidden. Blocking."""
    if query.get("error"):
        raise from_identity(query, "sign-in", linking=True)
    client = application(settings, app)
    with translated("code exchange"):
        try:
            result = client.acquire_token_by_auth_code_flow(dict(flow), dict(query))
        except ValueError as exc:  # state mismatch or a replayed flow
            raise InvalidInput(f"the sign-in answer does not match this link: {exc}") from exc
    if "error" in result:
        raise from_identity(result, "code exchange", linking=True)
    return _grant(settings, app, result, needed)


def _grant(settings: GraphSettings, app: EntraApp, result: Mapping[str, Any],
           needed: Iterable[str]) -> MicrosoftGrant:
    lacking = missing_scopes(needed, granted(result))
    if lacking:
        raise Forbidden("Microsoft did not grant " + ", ".join(
            describe_scope(s) for s in lacking) + "; link again and allow them")
    secrets = account_secrets(settings, app, result)
    claims = cast(Mapping[str, Any], result.get("id_token_claims") or {})
    return MicrosoftGrant(secrets, str(claims.get("preferred_username") or ""),
                          str(claims.get("name") or ""), str(claims["oid"]))


def account_secrets(settings: GraphSettings, app: EntraApp, result: Mapping[str, Any]
                    ) -> AccountSecrets:
    """What to keep of a token answer (the access token goes to the process cache, so
    verifying the new link costs no refresh)."""
    claims = cast(Mapping[str, Any], result.get("id_token_claims") or {})
    refresh = result.get("refresh_token")
    if not refresh or not claims.get("oid") or not claims.get("tid"):
        raise InvalidInput("Microsoft's answer lacks a refresh token or an ID token")
    secrets = AccountSecrets(
        refresh_token=str(refresh), account_id=f"{claims['oid']}.{claims['tid']}",
        tenant=str(claims["tid"]), client_id=app.client_id, client_secret=app.client_secret,
        scopes=tuple(s for s in granted(result) if s not in IDENTITY_SCOPES),
        display_name=str(claims.get("name") or ""))
    TOKENS.put(TOKENS.key(settings.authority, app.client_id, secrets.refresh_token),
               str(result["access_token"]), float(result.get("expires_in") or 0))
    return secrets


def refresh(settings: GraphSettings, secrets: AccountSecrets,
            cache: TokenCache = TOKENS) -> str:
    """A fresh access token for the stored grant (asking for exactly the permissions
    granted). invalid_grant (AADSTS70000, 700082, ...) is Unauthorized: the profile must
    be linked again. Blocking."""
    client = application(settings, EntraApp(secrets.client_id, secrets.client_secret))
    scopes = list(secrets.scopes)
    with translated("token refresh"):
        result = client.acquire_token_by_refresh_token(secrets.refresh_token, scopes)
    if "error" in result:
        raise from_identity(result, "token refresh")
    token = str(result["access_token"])
    cache.put(cache.key(settings.authority, secrets.client_id, secrets.refresh_token), token,
              float(result.get("expires_in") or 0))
    return token


class TokenSource:
    """The access token for one account: the process cache, else a refresh in a worker
    thread (one at a time per source)."""

    def __init__(self, settings: GraphSettings, secrets: AccountSecrets,
                 cache: TokenCache = TOKENS) -> None:
        self.settings = settings
        self.secrets = secrets
        self.cache = cache
        self.key = cache.key(settings.authority, secrets.client_id, secrets.refresh_token)
        self._lock = anyio.Lock()

    async def __call__(self, fresh: bool = False) -> str:
        async with self._lock:
            held = None if fresh else self.cache.get(self.key)
            if held is not None:
                return held
            return await anyio.to_thread.run_sync(partial(refresh, self.settings,
                                                          self.secrets, self.cache))

    def forget(self) -> None:
        self.cache.drop(self.key)


async def start_link_async(settings: GraphSettings, app: EntraApp,
                           graph_scopes: Iterable[str], redirect_uri: str,
                           login_hint: str | None = None) -> LinkStart:
    return await anyio.to_thread.run_sync(partial(start_link, settings, app,
                                                  tuple(graph_scopes), redirect_uri,
                                                  login_hint))


async def finish_link_async(settings: GraphSettings, app: EntraApp, flow: Mapping[str, Any],
                            query: Mapping[str, str], needed: Iterable[str]) -> MicrosoftGrant:
    return await anyio.to_thread.run_sync(partial(finish_link, settings, app, flow, query,
                                                  tuple(needed)))
