"""Signing webhook notifications with the client app's secrets (API.md s9.2).

The database holds only keyed digests of client secrets, which cannot make an HMAC, so
the secrets are also kept in clear in the secret store, at ``clients/{client_id}/secrets``.
The OAuth registry tells :class:`ClientSecrets` (its ``ClientSecretKeeper`` port) about
every new, rotated and deleted secret. During a rotation with overlap both secrets are
active and every notification carries one signature per secret, so a receiver verifies it
with either.

Two headers are sent:

* ``Cronofy-HMAC-SHA256``: ``base64(HMAC-SHA256(secret, body))`` per active secret,
  comma-separated without spaces, as Cronofy sends it and the SDKs check it (pycronofy's
  ``hmac_valid`` splits on ``,`` and compares each value exactly).
* ``Calgate-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``,
  one ``v1`` per active secret. The timestamp is signed too, so a receiver can refuse old
  deliveries replayed later (:func:`verify_calgate_signature`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from ..secrets.base import SecretStore

CRONOFY_HEADER = "Cronofy-HMAC-SHA256"
CALGATE_HEADER = "Calgate-Signature"
DEFAULT_TOLERANCE = 300  # seconds a Calgate-Signature timestamp may be off


def secrets_path(client_id: str) -> str:
    """Where a client's secrets live in the secret store."""
    return f"clients/{client_id}/secrets"


class ClientSecrets:
    """The client secrets kept in the secret store; signs webhook bodies with them.

    The stored value is ``{"secrets": "<JSON>"}`` (secret-store values are flat string maps)
    where the JSON is ``[{"secret": "...", "until": null | "<ISO 8601 UTC>"}]``, the current
    secret first. Implements ``oauth_server.ports.ClientSecretKeeper``. Blocking calls.
    """

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def keep(self, client_id: str, secret: str, previous_until: datetime | None) -> None:
        """Make ``secret`` the current one; the current one so far stays active until
        ``previous_until`` (None: it ends now). Anything older is dropped."""
        entries: list[dict[str, str | None]] = [{"secret": secret, "until": None}]
        if previous_until is not None and previous_until > datetime.now(UTC):
            current = next(iter(self._entries(client_id)), None)
            if current is not None and current[1] is None and current[0] != secret:
                entries.append({"secret": current[0],
                                "until": previous_until.astimezone(UTC).isoformat()})
        self._store.put(secrets_path(client_id), {"secrets": json.dumps(entries)})

    def forget(self, client_id: str) -> None:
        """Erase every version of the client's secrets (no error if none are kept)."""
        self._store.delete(secrets_path(client_id))

    def active(self, client_id: str, now: datetime | None = None) -> list[str]:
        """The secrets valid at ``now``, current first; [] when none is kept (a public client,
        or one created before Calgate kept secrets: rotate its secret to start)."""
        moment = now or datetime.now(UTC)
        return [secret for secret, until in self._entries(client_id)
                if until is None or datetime.fromisoformat(until) > moment]

    def sign(self, client_id: str, body: bytes, now: datetime | None = None
             ) -> dict[str, str] | None:
        """The signature headers for a webhook ``body``, or None when no secret is kept."""
        moment = now or datetime.now(UTC)
        secrets = self.active(client_id, moment)
        if not secrets:
            return None
        return {CRONOFY_HEADER: cronofy_hmac(secrets, body),
                CALGATE_HEADER: calgate_signature(secrets, body, int(moment.timestamp()))}

    def _entries(self, client_id: str) -> list[tuple[str, str | None]]:
        """(secret, until) pairs as stored, current first."""
        found = self._store.find(secrets_path(client_id))
        if found is None:
            return []
        return [(str(e["secret"]), None if e.get("until") is None else str(e["until"]))
                for e in json.loads(found["secrets"])]


def cronofy_hmac(secrets: Sequence[str], body: bytes) -> str:
    """The ``Cronofy-HMAC-SHA256`` value: standard base64 (padded) per secret, joined by ``,``."""
    return ",".join(base64.b64encode(_mac(secret, body)).decode() for secret in secrets)


def calgate_signature(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """The ``Calgate-Signature`` value: ``t=<timestamp>,v1=<hex>[,v1=<hex>…]``."""
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}", *(f"v1={_mac(s, signed).hex()}" for s in secrets)])


def verify_calgate_signature(header: str, body: bytes, secrets: Sequence[str],
                             tolerance: float = DEFAULT_TOLERANCE,
                             now: datetime | None = None) -> bool:
    """Whether ``header`` (a ``Calgate-Signature``) signs ``body`` with one of ``secrets``
    and its timestamp is within ``tolerance`` seconds of ``now``.

    Written to be copied by receivers: it needs only the standard library.
    """
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not signatures:
        return False
    if not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    moment = (now or datetime.now(UTC)).timestamp()
    if abs(moment - int(timestamps[0])) > tolerance:
        return False  # too old (a replay) or from the future
    signed = f"{timestamps[0]}.".encode() + body
    expected = [_mac(secret, signed).hex() for secret in secrets]
    return any(hmac.compare_digest(e.encode(), s.encode()) for e in expected for s in signatures)


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()
