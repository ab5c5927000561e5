"""Event text sealed with the account's data key (envelope encryption).

Each account has a random 256-bit data key, stored only wrapped by the secret store (Vault
Transit, or the local store's key). Erasing the account's row destroys the wrapped key, so
whatever sealed text remains anywhere (backups included) can no longer be read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class TextPerson:
    email: str | None
    display_name: str | None = None
    status: str | None = None

    def to_stored(self) -> dict[str, Any]:
        return {"email": self.email, "display_name": self.display_name, "status": self.status}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> TextPerson:
        return cls(stored.get("email"), stored.get("display_name"), stored.get("status"))


@dataclass(frozen=True, slots=True)
class EventText:
    """An event's text in the mirror, sealed per row (only what the grant lets it keep)."""

    summary: str | None = None
    description: str | None = None
    location: str | None = None
    url: str | None = None
    categories: tuple[str, ...] = ()
    participation_status: str | None = None
    attendees: tuple[TextPerson, ...] = ()
    organizer: TextPerson | None = None
    meeting_url: str | None = None
    # Where the provider has them (kept only when present, like meeting_url).
    reminders: tuple[int, ...] | None = None
    geo: tuple[str, str] | None = None
    extended_transparency: str | None = None
    conference_name: str | None = None  # an app's own link: its description

    def to_stored(self) -> dict[str, Any]:
        """The sealed JSON form (the mirror's row fingerprints are computed over it)."""
        return {
            "summary": self.summary, "description": self.description,
            "location": self.location, "url": self.url,
            "categories": list(self.categories),
            "participation_status": self.participation_status,
            "attendees": [p.to_stored() for p in self.attendees],
            "organizer": self.organizer.to_stored() if self.organizer else None,
            # Only when present, so mirrors written before it existed keep their fingerprints.
            **({"meeting_url": self.meeting_url} if self.meeting_url else {}),
            **({"reminders": list(self.reminders)} if self.reminders is not None else {}),
            **({"geo": list(self.geo)} if self.geo else {}),
            **({"extended_transparency": self.extended_transparency}
               if self.extended_transparency else {}),
            **({"conference_name": self.conference_name} if self.conference_name else {}),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> EventText:
        organizer = stored.get("organizer")
        return cls(
            summary=stored.get("summary"), description=stored.get("description"),
            location=stored.get("location"), url=stored.get("url"),
            categories=tuple(stored.get("categories") or ()),
            participation_status=stored.get("participation_status"),
            attendees=tuple(TextPerson.from_stored(p) for p in stored.get("attendees") or ()),
            organizer=TextPerson.from_stored(organizer) if organizer else None,
            meeting_url=stored.get("meeting_url"),
            reminders=tuple(stored["reminders"]) if stored.get("reminders") is not None
            else None,
            geo=(str(geo[0]), str(geo[1])) if (geo := stored.get("geo")) else None,
            extended_transparency=stored.get("extended_transparency"),
            conference_name=stored.get("conference_name"))


def seal_text(key: bytes, text: EventText, context: str) -> bytes:
    return seal(key, text.to_stored(), context)


def unseal_text(key: bytes, blob: bytes, context: str) -> EventText:
    return EventText.from_stored(unseal(key, blob, context))
