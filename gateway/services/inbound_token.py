"""The secret in the inbound-mail webhook's path (``/inbound/smart_invites/{token}``).

Inbound-mail services sign nothing a receiver can check without an account of its own (and
each signs differently), but each can post to a URL the operator gives it: a long random
token in that URL is what lets only the operator's service in. The token lives in the
secret store, is made on first use and can be rotated (``calgate smart-invites
inbound-url --rotate``); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets

from ..secrets.base import SecretStore

PATH = "smart_invites/inbound"


class InboundToken:
    """Reads, makes and rotates the token. Blocking calls."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def current(self) -> str:
        """The token, made now if there is none yet."""
        found = self._store.find(PATH)
        if found and found.get("token"):
            return found["token"]
        return self.rotate()

    def rotate(self) -> str:
        """A new token: the URL with the old one stops working at once."""
        token = secrets.token_urlsafe(32)
        self._store.put(PATH, {"token": token})
        return token

    def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is the token (False when none was ever made)."""
        found = self._store.find(PATH)
        token = (found or {}).get("token") or ""
        return bool(token) and hmac.compare_digest(token.encode(), presented.encode())
