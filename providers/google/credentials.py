"""google-auth credentials for a linked account, and a process-wide cache of their access
tokens.

The sync engine and the outbox open a fresh provider for every job; without the cache each
would start with a token refresh, doubling the upstream requests of an incremental sync.
The cache is keyed by a digest of (token endpoint, client id, refresh token), holds only
in-memory access tokens, and is dropped for a refresh token when it is revoked.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from google.oauth2.credentials import Credentials

from ..errors import InvalidInput
from .config import GoogleEndpoints


@dataclass(frozen=True, slots=True)
class CachedToken:
    token: str
    expiry: datetime | None  # naive UTC, as google-auth keeps it
    scopes: tuple[str, ...] | None


class TokenCache:
    """Access tokens by account, shared by every provider instance of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, CachedToken] = {}

    @staticmethod
    def key(token_uri: str, client_id: str, refresh_token: str) -> str:
        return hashlib.sha256(f"{token_uri}\0{client_id}\0{refresh_token}".encode()).hexdigest()

    def get(self, key: str) -> CachedToken | None:
        with self._lock:
            return self._tokens.get(key)

    def save(self, key: str, credentials: Credentials) -> None:
        token = credentials.token
        if not token:
            return
        scopes = credentials.granted_scopes
        with self._lock:
            known = self._tokens.get(key)
            if known is None or known.token != token:
                self._tokens[key] = CachedToken(token, credentials.expiry,
                                                tuple(scopes) if scopes else None)

    def put(self, key: str, token: str, expiry: datetime | None,
            scopes: tuple[str, ...] | None) -> None:
        with self._lock:
            self._tokens[key] = CachedToken(token, expiry, scopes)

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


TOKENS = TokenCache()


@dataclass(frozen=True, slots=True)
class AccountSecrets:
    """What the secret store keeps for a Google profile."""

    refresh_token: str
    client_id: str
    client_secret: str

    @classmethod
    def from_mapping(cls, credentials: Mapping[str, str]) -> AccountSecrets:
        missing = [k for k in ("refresh_token", "client_id", "client_secret")
                   if not credentials.get(k)]
        if missing:
            raise InvalidInput(f"Google credentials lack {', '.join(missing)}")
        return cls(credentials["refresh_token"], credentials["client_id"],
                   credentials["client_secret"])


def make_credentials(secrets: AccountSecrets, endpoints: GoogleEndpoints,
                     cache: TokenCache = TOKENS) -> tuple[Credentials, str]:
    """Credentials that start from a cached access token when there is one (google-auth
    refreshes before a call when it is about to expire, and once after a 401)."""
    key = cache.key(endpoints.token_uri, secrets.client_id, secrets.refresh_token)
    cached = cache.get(key)
    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=cached.token if cached else None, refresh_token=secrets.refresh_token,
        token_uri=endpoints.token_uri, client_id=secrets.client_id,
        client_secret=secrets.client_secret, expiry=cached.expiry if cached else None,
        granted_scopes=list(cached.scopes) if cached and cached.scopes else None)
    return credentials, key
