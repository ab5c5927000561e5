"""Random identifiers and keyed digests: nothing the authorization server stores is replayable.

Tokens and codes are 256-bit CSPRNG values; only an HMAC-SHA256 digest under the server key
is kept. Client secrets (also 256-bit random, so a slow hash adds nothing) get the same
treatment under a separate derived key. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_token() -> str:
    """An opaque 256-bit token, URL-safe, 43 characters."""
    return secrets.token_urlsafe(32)


def new_id(prefix: str, nbytes: int = 15) -> str:
    """A public identifier such as ``acc_…`` (120 random bits by default)."""
    return prefix + base64.b32encode(os.urandom(nbytes)).decode("ascii").lower().rstrip("=")


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """Keys derived from one 256-bit server secret held in the secret store."""

    master: bytes

    def _derive(self, label: str) -> bytes:
        return hmac.new(self.master, label.encode(), hashlib.sha256).digest()

    def derive(self, purpose: str) -> bytes:
        """A key of the host's own for ``purpose`` (e.g. signing relink URLs), independent
        of every key this server uses itself."""
        return self._derive(f"host:{purpose}")

    def token_digest(self, token: str) -> str:
        return hmac.new(self._derive("token"), token.encode(), hashlib.sha256).hexdigest()

    def secret_digest(self, secret: str) -> str:
        return hmac.new(self._derive("client-secret"), secret.encode(), hashlib.sha256).hexdigest()

    def browser_digest(self, value: str) -> str:
        return hmac.new(self._derive("browser"), value.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: str, transaction_id: str) -> str:
        mac = hmac.new(self._derive("csrf"), f"{session}\x00{transaction_id}".encode(),
                       hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def refresh_token(self, family_id: str, generation: int) -> str:
        """A refresh token that names its family and generation to us alone.

        Rotated-out tokens are not kept (one minute of refresh load left 74,000 rows): an
        old token is recognised as reuse by what it carries, authenticated and opaque to
        anyone without the server key (AES-GCM), so nobody can forge one to kill a family.
        128 random bits keep each token unguessable even to a holder of the key.
        """
        nonce = os.urandom(12)
        plain = struct.pack(">Q", generation) + os.urandom(16) + family_id.encode()
        raw = nonce + AESGCM(self._derive("refresh")).encrypt(nonce, plain, _REFRESH_AAD)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def read_refresh_token(self, token: str) -> tuple[str, int] | None:
        """(family id, generation) of a refresh token :meth:`refresh_token` made, else None."""
        if len(token) < _REFRESH_MIN_LENGTH:  # e.g. a token from before generations
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = AESGCM(self._derive("refresh")).decrypt(raw[:12], raw[12:], _REFRESH_AAD)
            return plain[24:].decode(), struct.unpack(">Q", plain[:8])[0]
        except Exception:  # garbage or tampering is simply "not ours"
            return None

    def seal(self, purpose: str, data: dict[str, Any]) -> str:
        """Authenticated encryption of ``data`` for a URL segment (e.g. paging cursors)."""
        nonce = os.urandom(12)
        box = AESGCM(self._derive("seal"))
        raw = nonce + box.encrypt(nonce, json.dumps(data).encode(), purpose.encode())
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def unseal(self, purpose: str, sealed: str) -> dict[str, Any] | None:
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            plain = AESGCM(self._derive("seal")).decrypt(raw[:12], raw[12:], purpose.encode())
            value = json.loads(plain)
        except Exception:  # any tampering or garbage is simply "not ours"
            return None
        return value if isinstance(value, dict) else None


_REFRESH_AAD = b"calgate-refresh-token"
# nonce + generation + random + the shortest family id + tag, in base64url
_REFRESH_MIN_LENGTH = (12 + 8 + 16 + 1 + 16) * 4 // 3


def equal(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def seal_with_token(token: str, payload: dict[str, Any]) -> bytes:
    """Encrypt ``payload`` under a key derived from ``token`` itself.

    Used for the refresh-token grace window: the successor pair is readable only by whoever
    presents the rotated token again, so the database alone never yields a usable token.
    """
    key = hashlib.sha256(b"calgate-successor\x00" + token.encode()).digest()
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), None)


def unseal_with_token(token: str, blob: bytes) -> dict[str, Any] | None:
    key = hashlib.sha256(b"calgate-successor\x00" + token.encode()).digest()
    try:
        value = json.loads(AESGCM(key).decrypt(blob[:12], blob[12:], None))
    except Exception:
        return None
    return value if isinstance(value, dict) else None
