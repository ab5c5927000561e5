"""What the secret store keeps for a Microsoft profile, and a process-wide cache of access
tokens.

The secret store holds the refresh token, the account (msal's home account id, ``oid.tid``),
its tenant, the Graph permissions granted, and the app reference (client id and secret of
the Entra app that obtained the grant: the deployment's or a client app's own); none of it
ever goes into the database. The sync engine and the outbox open a fresh provider for every
job; without the cache each would start with a token refresh, doubling the requests of an
incremental sync. Access tokens are kept in memory only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidInput

# The tenant Microsoft issues personal accounts (Outlook.com) from.
# https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference (tid)
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
# An access token this close to its expiry is refreshed before use, so that a long
# calendarView round does not lose it halfway.
EXPIRY_MARGIN = 120.0
REQUIRED = ("refresh_token", "account_id", "tenant", "client_id", "scopes")


@dataclass(frozen=True, slots=True)
class AccountSecrets:
    """A linked Microsoft account's secrets; ``scopes`` are the Graph permissions granted
    (space separated in the mapping), so refreshing never asks for more than consented."""

    refresh_token: str
    account_id: str
    tenant: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    # The ID token's ``name`` claim (the ``profile`` scope Calgate always asks for): the
    # account's display name without User.Read. Not secret; empty when Microsoft sent none.
    display_name: str = ""

    @property
    def personal(self) -> bool:
        """An Outlook.com (personal Microsoft) account, not work or school."""
        return self.tenant == CONSUMER_TENANT

    @classmethod
    def from_mapping(cls, credentials: Mapping[str, str]) -> AccountSecrets:
        missing = [k for k in REQUIRED if not credentials.get(k)]
        if missing:
            raise InvalidInput(f"Microsoft credentials lack {', '.join(missing)}")
        return cls(credentials["refresh_token"], credentials["account_id"],
                   credentials["tenant"], credentials["client_id"],
                   credentials.get("client_secret") or None,
                   tuple(credentials["scopes"].split()),
                   credentials.get("display_name") or "")

    def to_mapping(self) -> dict[str, str]:
        out = {"refresh_token": self.refresh_token, "account_id": self.account_id,
               "tenant": self.tenant, "client_id": self.client_id,
               "scopes": " ".join(self.scopes)}
        if self.client_secret:
            out["client_secret"] = self.client_secret
        if self.display_name:
            out["display_name"] = self.display_name
        return out


@dataclass(frozen=True, slots=True)
class CachedToken:
    token: str
    expires_at: float  # time.monotonic()


class TokenCache:
    """Access tokens by grant, shared by every provider instance of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, CachedToken] = {}

    @staticmethod
    def key(authority: str, client_id: str, refresh_token: str) -> str:
        return hashlib.sha256(f"{authority}\0{client_id}\0{refresh_token}".encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """A token that stays valid for at least :data:`EXPIRY_MARGIN`, or None."""
        with self._lock:
            held = self._tokens.get(key)
        if held is None or held.expires_at - EXPIRY_MARGIN <= time.monotonic():
            return None
        return held.token

    def put(self, key: str, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = CachedToken(token, time.monotonic() + expires_in)

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


TOKENS = TokenCache()
