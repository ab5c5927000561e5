"""Event text sealed with the account's data key (envelope encryption).

Each account has a random 256-bit data key, stored only wrapped by the secret store (Vault
Transit, or the local store's key). Erasing the account's row destroys the wrapped key, so
whatever sealed text remains anywhere (backups included) can no longer be read.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select

from ..persistence.tables import accounts
from ..secrets import SecretStore


class DataKeys:
    """Unwraps (and briefly remembers) account data keys."""

    def __init__(self, engine: Engine, secrets: SecretStore) -> None:
        self.engine = engine
        self.secrets = secrets
        self._keys: dict[str, bytes] = {}

    def key(self, account_id: str) -> bytes | None:
        """The account's data key, or None if the account (and so its key) is gone."""
        known = self._keys.get(account_id)
        if known is not None:
            return known
        with self.engine.connect() as conn:
            wrapped = conn.execute(select(accounts.c.data_key_wrapped).where(
                accounts.c.id == account_id)).scalar()
        if not wrapped:
            return None
        key = self.secrets.unwrap_data_key(wrapped)
        self._keys[account_id] = key
        return key

    def forget(self, account_id: str) -> None:
        self._keys.pop(account_id, None)


def seal(key: bytes, value: dict[str, Any], context: str) -> bytes:
    """AES-256-GCM of the JSON ``value``, bound to ``context`` (e.g. the row's identity)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(value).encode(), context.encode())


def unseal(key: bytes, blob: bytes, context: str) -> dict[str, Any]:
    value = json.loads(AESGCM(key).decrypt(blob[:12], blob[12:], context.encode()))
    assert isinstance(value, dict)
    return value
