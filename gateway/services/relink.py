"""Relink URLs: ``profile_relink_url`` of a disconnected profile (API.md s2.1, s3.3).

The URL opens Calgate's relink page in any browser (no cookie from the original link): the
user signs in to the same upstream account again and the profile gets working credentials,
keeping its ids, its account's ``sub`` and its mirror. Nothing is stored for it: the token
is signed (HMAC-SHA256 under a key derived from the server key) and names

* the profile,
* the disconnection it answers (``disconnected_at``): once the profile is reconnected, or
  disconnected again later, the token no longer matches, so it works at most once,
* an expiry (``RELINK_TTL`` after it was shown, rounded up to the day so the URL stays the
  same through a day of polling).

The token only ever lets its holder restore credentials for the *same* upstream identity
(the relink compares the upstream id with the profile's digest): a stranger holding the URL
can neither attach their calendar to the account nor learn anything from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

RELINK_TTL = timedelta(days=14)
DAY = 86400


@dataclass(frozen=True, slots=True)
class RelinkClaim:
    """What a valid token names: the profile and the disconnection it answers."""

    profile_id: str
    disconnected: int  # unix seconds of ``disconnected_at`` (0: unknown)


class RelinkLinks:
    """Signs and reads the tokens of relink URLs (``{base_url}/oauth/relink/{token}``)."""

    def __init__(self, key: bytes, base_url: str, ttl: timedelta = RELINK_TTL) -> None:
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    def url(self, profile: Mapping[str, Any], now: datetime | None = None) -> str | None:
        """The relink URL of a profile row, or None while it is connected."""
        if profile["connected"]:
            return None
        moment = (now or datetime.now(UTC)).timestamp() + self.ttl.total_seconds()
        expires = -(-int(moment) // DAY) * DAY  # rounded up to the day
        payload = f"{profile['id']}:{marker(profile.get('disconnected_at'))}:{expires}"
        return f"{self.base_url}/oauth/relink/{_b64(payload.encode())}.{self._mac(payload)}"

    def read(self, token: str, now: datetime | None = None) -> RelinkClaim | None:
        """The claim of a token this server signed and that has not expired, else None."""
        encoded, _, mac = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        profile_id, disconnected, expires = payload.split(":")
        if int(expires) <= (now or datetime.now(UTC)).timestamp():
            return None
        return RelinkClaim(profile_id, int(disconnected))

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, b"relink\x00" + payload.encode(),
                             hashlib.sha256).digest())


def marker(disconnected_at: datetime | None) -> int:
    """The disconnection a token answers, as whole unix seconds (SQLite keeps no offset)."""
    if disconnected_at is None:
        return 0
    aware = disconnected_at if disconnected_at.tzinfo else disconnected_at.replace(tzinfo=UTC)
    return int(aware.timestamp())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
