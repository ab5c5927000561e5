"""Authlib's authorization-server core, wired to our storage and policies.

Framework glue is in ``endpoints.py`` and ``consent.py``; this module stays free of
Starlette so it can run in a worker thread (Authlib's core and our storage block): the token
endpoint's own thread (``endpoints.TokenLane``), anyio's for everything else.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn
from urllib.parse import unquote_plus, urlsplit

from authlib.common.security import is_secure_transport
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InsecureTransportError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from . import scopes as scope_catalogue
from .crypto import ServerKeys
from .grants_store import (
    CODE_REUSE,
    REFRESH_REUSE,
    CodeRecord,
    GrantStore,
    Issued,
    RefreshRecord,
)
from .ports import AccountHost
from .registry import Client, ClientRegistry
from .throttle import FailureThrottle

log = logging.getLogger("calgate.oauth")
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
REALM = "calgate"

TokenResponse = tuple[int, Any, list[tuple[str, str]]]


class Payload(OAuth2Payload):  # type: ignore[misc]
    """Request parameters as a plain mapping; repeated keys are kept in ``datalist``."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        # RFC 6749 s3.1: a parameter sent without a value is treated as omitted.
        self._data = {k: v[0] for k, v in self._datalist.items() if v[0] != ""}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist

    def repeated(self) -> list[str]:
        return [k for k, v in self._datalist.items() if len(v) > 1]


class Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from already-parsed parameters (query or body) and headers."""

    def __init__(self, method: str, uri: str, items: list[tuple[str, str]],
                 headers: Mapping[str, str], remote: str = "") -> None:
        # OAuth2Request.__init__ (Authlib 1.9.6) with its transport check cached: Authlib
        # reads the environment and parses the host as an IP address on every request.
        check_transport(uri)
        self.method = method
        self.uri = uri
        self.headers = dict(headers)
        self._body = None
        self.client: Client | None = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: CodeRecord | None = None
        self.refresh_token: RefreshRecord | None = None
        self.credential: Any = None
        self._scope: str | None = None
        self.payload = Payload(items)
        self.remote = remote

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


def check_transport(uri: str) -> None:
    """Authlib's https-or-loopback rule (RFC 6749 s3.1-3.2, RFC 8252 s7.3) for ``uri``."""
    parts = urlsplit(uri)
    _check_origin(parts.scheme, parts.netloc)


@lru_cache(maxsize=64)
def _check_origin(scheme: str, netloc: str) -> None:
    # The rule reads only the scheme and host (and AUTHLIB_INSECURE_TRANSPORT, set once).
    if not is_secure_transport(f"{scheme}://{netloc}/"):
        raise InsecureTransportError()


class ClientAuthFailed(InvalidClientError):  # type: ignore[misc]
    """401 ``invalid_client`` with a Basic challenge naming our realm (RFC 6749 s5.2).

    Authlib's own challenge has no ``realm``; one body for every cause, so unknown ids and
    wrong secrets look the same (OAUTH.md 40-42).
    """

    def __init__(self) -> None:
        super().__init__(status_code=401, description="Client authentication failed.")

    def get_headers(self) -> list[tuple[str, str]]:
        headers = [h for h in super().get_headers() if h[0] != "WWW-Authenticate"]
        return [*headers, ("WWW-Authenticate", f'Basic realm="{REALM}"')]


class TooManyFailures(OAuth2Error):  # type: ignore[misc]
    """Client authentication is throttled for this client id and source (OAUTH.md 47)."""

    error = "invalid_client"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(description="Too many failed client authentications; retry later.")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str | None
    secret: str | None
    method: str


def read_credentials(request: Request) -> ClientCredentials:
    """Client credentials from HTTP Basic (form-urlencoded, RFC 6749 s2.3.1) or the body.

    A stray ``Authorization: Bearer …`` (the Cronofy SDKs send ``Bearer None``) is not client
    authentication and is ignored; Basic together with a body secret is refused.
    """
    header = request.headers.get("Authorization") or request.headers.get("authorization") or ""
    body_secret = request.payload.data.get("client_secret")
    if header[:6].lower() == "basic ":
        if body_secret:
            raise InvalidRequestError("Use one client authentication method, not two.")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            raw_id, raw_secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ClientAuthFailed() from None
        return ClientCredentials(unquote_plus(raw_id), unquote_plus(raw_secret),
                                 "client_secret_basic")
    client_id = request.payload.data.get("client_id")
    if body_secret:
        return ClientCredentials(client_id, body_secret, "client_secret_post")
    return ClientCredentials(client_id, None, "none")


class CalgateServer(AuthorizationServer):  # type: ignore[misc]
    """The authorization server: Authlib grants over our registry and grant store."""

    def __init__(self, *, registry: ClientRegistry, store: GrantStore, keys: ServerKeys,
                 host: AccountHost, issuer: str, throttle: FailureThrottle) -> None:
        super().__init__(scopes_supported=sorted(scope_catalogue.KNOWN))
        self.registry = registry
        self.store = store
        self.keys = keys
        self.host = host
        self.issuer = issuer
        self.throttle = throttle
        # The host's hook (metrics): called with the grant type of every token response
        # that issued tokens. Never given the tokens.
        self.on_token_issued: Callable[[str], None] | None = None
        self.register_grant(CodeGrant)
        self.register_grant(RefreshGrant)

    def create_token_responses(self, requests: Sequence[Request]
                               ) -> list[TokenResponse | Exception]:
        """Token responses for a batch of requests, their rotations committed together.

        Authlib answers each request in turn inside one :meth:`GrantStore.batch`, which
        queues the refresh-token rotations and applies them at the end in one transaction.
        A request whose rotation lost there (its token was rotated meanwhile, say by a retry
        in the same batch) is answered again, alone, now that the winner is committed: the
        grace window or reuse detection decides, exactly as without batching. No response
        leaves before its rotation is committed. An unexpected error takes the place of its
        request's response.
        """
        results: list[TokenResponse | Exception] = []
        rotating: list[tuple[int, int]] = []  # (request index, rotations it queued)
        with self.store.batch() as batch:
            for index, request in enumerate(requests):
                queued = len(batch.pending)
                results.append(self._token_response(request))
                added = len(batch.pending) - queued
                if added and _succeeded(results[-1]):
                    rotating.append((index, added))
                elif added:  # issued for a request that failed after all: never applied
                    del batch.pending[queued:]
            won = iter(batch.commit())
        for index, added in rotating:
            if not all([next(won) for _ in range(added)]):
                results[index] = self._token_response(requests[index])
        return results

    def _token_response(self, request: Request) -> TokenResponse | Exception:
        try:
            result: TokenResponse = self.create_token_response(request)
        except Exception as exc:  # handed to the request's own waiter, which raises it
            return exc
        return result

    # -- Authlib hooks ----------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.registry.find(client_id)

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]
                        ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def validate_requested_scope(self, scope: str | None) -> None:
        try:
            scope_catalogue.validate(scope)
        except scope_catalogue.ScopeError as exc:
            raise InvalidScopeError(printable(str(exc))) from exc

    def authenticate_client(self, request: Request, methods: list[str],
                            endpoint: str = "token") -> Client:
        """Our own client authentication: constant-time, throttled, no enumeration."""
        creds = read_credentials(request)
        key = (creds.client_id or "", request.remote)
        wait = self.throttle.retry_after(key)
        if wait:
            raise TooManyFailures(wait)
        client = self.registry.find(creds.client_id) if creds.client_id else None
        if creds.method == "none":
            if client is not None and client.public and "none" in methods:
                request.auth_method = "none"
                return client
            raise ClientAuthFailed()
        # Compute the digest even for unknown ids so timing does not reveal which exist.
        # During a rotation with overlap the previous secret is accepted too (until expiry).
        digest = self.keys.secret_digest(creds.secret or "")
        if client is not None and client.accepts_digest(digest):
            request.auth_method = creds.method
            return client
        self.throttle.record(key)
        raise ClientAuthFailed()

    def end_authorization(self, subject: str, reason: str) -> None:
        """What revoking an authorization does (RFC 7009, Cronofy's ``sub``): the host erases
        the account (mirror, credentials, upstream grant, push channels) and records
        ``reason`` in its audit log, then every code, token and family of the subject goes."""
        self.host.revoke_subject(subject, reason)
        self.store.revoke_subject(subject, reason)

    def end_stolen(self, subject: str, reason: str) -> None:
        """A replayed code or a reused refresh token: the grant is presumed stolen.

        The caller has revoked the family already, so neither holder can use its tokens
        while the erasure runs; now the whole authorization ends, as if revoked. Nobody
        holds a token to erase it any more, so if erasing fails the revoked family stays
        behind as a marker and housekeeping retries (``AuthorizationService.sweep_stolen``).
        """
        try:
            self.end_authorization(subject, reason)
        except Exception:
            log.exception("ending stolen authorization %s failed; housekeeping retries",
                          subject)

    def error_redirect(self, error: OAuth2Error) -> str:
        """The redirect for an authorization error: ``error``, ``state`` and ``iss`` (RFC 9207)."""
        params = [*error.get_body(), ("iss", self.issuer)]
        return str(add_params_to_uri(error.redirect_uri, params))


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code grant with exact redirect matching, S256 PKCE and reuse revocation."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: CalgateServer

    def query_authorization_code(self, code: str, client: Client) -> CodeRecord | None:
        record = self.server.store.find_code(code, client.client_id)
        if record is None or (record.expired and not record.used):
            return None
        return record

    def validate_token_request(self) -> None:
        super().validate_token_request()
        record: CodeRecord = self.request.authorization_code
        if "redirect_uri" not in self.request.payload.data:
            raise InvalidGrantError("Missing 'redirect_uri'.")
        _check_verifier(record.code_challenge, self.request.payload.data.get("code_verifier"))
        if record.used:
            # Second redemption by the rightful client: revoke what the first one issued.
            self._code_replayed(record)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        record: CodeRecord = self.request.authorization_code
        issued = self.server.store.redeem_code(record)
        if issued is None:
            self._code_replayed(record)
        body = _token_body(issued)
        body["account_id"] = body["sub"] = record.subject
        if record.linking_profile:
            body["linking_profile"] = record.linking_profile
        return 200, body, _no_store()

    def _code_replayed(self, record: CodeRecord) -> NoReturn:
        """RFC 6749 s4.1.2, RFC 9700 s4.2.4: the authorization the code led to ends."""
        subject = self.server.store.revoke_code_family(record.code_hash)
        if subject is not None:
            self.server.end_stolen(subject, CODE_REUSE)
        raise InvalidGrantError("The code was already used.")


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation, reuse detection and a short retry grace window (OAUTH.md 68-77),
    for the clients that rotate (``Client.rotates_refresh_tokens``); the others keep their
    refresh token and get a new access token (RFC 9700 s4.14: client authentication instead
    of rotation)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: CalgateServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        record = self.server.store.find_refresh(refresh_token)
        if record is None:
            # Not kept: maybe a token that rotations superseded (GrantStore._apply).
            superseded = self.server.store.find_superseded(
                refresh_token, self.request.client.get_client_id())
            if superseded is not None:
                self._reused(superseded[0])
        return record

    def _validate_token_scope(self, token: RefreshRecord) -> None:
        requested = self.request.payload.scope
        if requested and not scope_catalogue.within(scope_catalogue.parse(requested),
                                                    token.scope.split()):
            raise InvalidScopeError()
        if requested and any(s not in scope_catalogue.KNOWN
                             for s in scope_catalogue.parse(requested)):
            raise InvalidScopeError()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        record: RefreshRecord = self.request.refresh_token
        presented = self.request.payload.data["refresh_token"]
        if not record.live:
            raise InvalidGrantError()
        scope = " ".join(scope_catalogue.parse(self.request.payload.scope)) or record.scope
        issued: Issued | None = None
        if record.rotated_at is None and self.request.client.rotates_refresh_tokens:
            issued = self.server.store.rotate(record, presented, scope)
        elif record.rotated_at is None:  # a confidential client that keeps its token
            issued = self.server.store.keep(record, presented, scope)
        if issued is None:
            issued = self.server.store.successor_in_grace(presented)
        if issued is None:
            # A rotated token came back after the grace window.
            self._reused(record.family_id)
        return 200, _token_body(issued), _no_store()

    def _reused(self, family_id: str) -> NoReturn:
        """A rotated-out refresh token came back: assume theft (RFC 9700 s4.14.2)."""
        subject = self.server.store.revoke_family(family_id, REFRESH_REUSE)
        if subject is not None:
            self.server.end_stolen(subject, REFRESH_REUSE)
        raise InvalidGrantError()


def _succeeded(result: TokenResponse | Exception) -> bool:
    return not isinstance(result, Exception) and result[0] == 200


def printable(text: str) -> str:
    """``text`` as an ``error_description`` may carry it (RFC 6749 s5.2: %x20-21 / %x23-5B /
    %x5D-7E); Authlib raises ValueError, a 500, on anything else from the request."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


def _check_verifier(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier:  # PKCE downgrade (RFC 9700 s4.8.2)
            raise InvalidRequestError("No 'code_challenge' was sent for this code.")
        return
    if not verifier:
        raise InvalidRequestError("Missing 'code_verifier'.")
    if not VERIFIER.match(verifier) or create_s256_code_challenge(verifier) != challenge:
        raise InvalidGrantError("Code challenge failed.")


def _token_body(issued: Issued) -> dict[str, Any]:
    return {"token_type": "bearer", **issued.as_dict()}


def _no_store() -> list[tuple[str, str]]:
    return [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
