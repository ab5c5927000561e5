"""What the grant store hands out: codes, refresh records, issued pairs, lifetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    access: int = 3600
    refresh: int = 365 * 86400
    refresh_idle: int = 90 * 86400
    grace: int = 5
    code: int = 60
    cache: float = 1.0  # seconds a validated access token is trusted without the database


@dataclass(frozen=True, slots=True)
class CodeRecord:
    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    subject: str
    linking_profile: dict[str, Any] | None
    code_challenge: str | None
    expired: bool
    used: bool
    family_id: str | None

    # Authlib AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    token_hash: str
    family_id: str
    client_id: str
    subject: str
    scope: str  # the family's (original grant's) scope
    rotated_at: datetime | None
    successor: bytes | None
    live: bool  # family not revoked, token and family not expired
    generation: int

    # Authlib TokenMixin pieces the refresh grant calls
    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a valid access token stands for."""

    subject: str
    client_id: str
    scope: tuple[str, ...]
    expires_at: datetime
    family_id: str


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    scope: str

    def as_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_in": self.expires_in, "scope": self.scope}
