"""The client-app registry: who may ask users for calendar access, and how they look."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, bindparam, delete, insert, or_, select, update

from . import crypto
from . import scopes as scope_catalogue
from .cache import TtlCache
from .crypto import ServerKeys, new_id, new_token
from .ports import ClientSecretKeeper
from .tables import clients

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_OVERLAP = 366 * 24 * 3600  # seconds an old secret may outlive its rotation


class ClientError(ValueError):
    """A client registration is invalid; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Branding:
    """How the consent screen presents a client app."""

    display_name: str
    logo_url: str | None = None
    accent_color: str | None = None
    privacy_policy_url: str | None = None
    support_url: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client app, with the Authlib ``ClientMixin`` methods it needs."""

    client_id: str
    secret_hash: str | None = field(repr=False)  # Authlib logs clients at DEBUG
    redirect_uris: tuple[str, ...]
    allowed_scopes: tuple[str, ...]
    branding: Branding
    public: bool = False
    legacy_no_pkce: bool = False
    verified: bool = False
    # During a rotation with overlap the previous secret also authenticates, until then.
    previous_secret_hash: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    # A confidential client's opt-in to refresh-token rotation (public clients always rotate).
    rotate_refresh_tokens: bool = False

    @property
    def rotates_refresh_tokens(self) -> bool:
        """Whether a refresh answers with a new refresh token (and a reused one ends the grant).

        A public client always rotates (RFC 9700 s4.14.2). A confidential client authenticates
        with its secret at every refresh, which RFC 9700 s4.14 accepts in place of rotation;
        by default it keeps one refresh token for the life of the grant, as Cronofy does (an
        app that stores only the refresh token of the code exchange keeps working).
        """
        return self.public or self.rotate_refresh_tokens

    def accepts_digest(self, digest: str, now: datetime | None = None) -> bool:
        """Whether ``digest`` (``ServerKeys.secret_digest`` of a presented secret) is that
        of the current secret, or of the previous one while its overlap lasts."""
        # crypto.equal looked up per call: the white-box test of OAUTH.md 48 spies on it.
        current = self.secret_hash is not None and crypto.equal(self.secret_hash, digest)
        until = self.previous_secret_until
        previous = (self.previous_secret_hash is not None and until is not None
                    and (now or datetime.now(UTC)) < until
                    and crypto.equal(self.previous_secret_hash, digest))
        return current or previous

    # -- Authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # RFC 9700: the redirect URI is always sent and compared exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = scope_catalogue.parse(scope)
        if not requested or not scope_catalogue.within(requested, self.allowed_scopes):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string equality, RFC 9700 s4.1.3

    def check_client_secret(self, secret: str, keys: ServerKeys) -> bool:
        return self.accepts_digest(keys.secret_digest(secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return (method == "none") == self.public

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    @property
    def requires_pkce(self) -> bool:
        return self.public or not self.legacy_no_pkce


def validate_redirect_uri(uri: str) -> str:
    """RFC 9700 s2.6 / OAuth 2.1 s2.3.1: https, or http only on a loopback host; no fragment."""
    parts = urlsplit(uri)
    private_use = re.fullmatch(r"[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+", parts.scheme)  # RFC 8252 s7.1
    if parts.scheme not in {"https", "http"} and not private_use:
        raise ClientError(f"redirect URI {uri!r}: scheme must be https")
    if parts.fragment or "#" in uri:
        raise ClientError(f"redirect URI {uri!r}: must not contain a fragment")
    if parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ClientError(f"redirect URI {uri!r}: http is allowed only for loopback hosts")
    if parts.scheme in {"http", "https"} and (not parts.hostname or parts.username):
        raise ClientError(f"redirect URI {uri!r}: needs a host and no user information")
    return uri


def _validate(client: Client) -> None:
    if not client.branding.display_name.strip():
        raise ClientError("name must not be empty")
    if not client.redirect_uris:
        raise ClientError("at least one redirect URI is required")
    for uri in client.redirect_uris:
        validate_redirect_uri(uri)
    try:
        scope_catalogue.validate(" ".join(client.allowed_scopes))
    except scope_catalogue.ScopeError as exc:
        raise ClientError(str(exc)) from exc
    color = client.branding.accent_color
    if color is not None and not _COLOR.fullmatch(color):
        raise ClientError("accent colour must look like #0b5fff")
    for label, url in (("logo URL", client.branding.logo_url),
                       ("privacy-policy URL", client.branding.privacy_policy_url),
                       ("support URL", client.branding.support_url)):
        if url is not None and urlsplit(url).scheme != "https":
            raise ClientError(f"{label} must be an https URL")


class ClientRegistry:
    """Create, read, rotate and delete client apps (the CLI's ``calgate clients``).

    ``keeper``, when set, is told every confidential client's secret (to sign webhooks);
    without one only digests are kept anywhere.
    """

    def __init__(self, engine: Engine, keys: ServerKeys, cache_seconds: float = 0.0,
                 keeper: ClientSecretKeeper | None = None) -> None:
        self._engine = engine
        self._keys = keys
        self._cache: TtlCache[str, Client] = TtlCache(cache_seconds, maxsize=1000)
        self.keeper = keeper

    def create(self, *, name: str, redirect_uris: Sequence[str], scopes: Sequence[str],
               branding: Branding | None = None, public: bool = False,
               legacy_no_pkce: bool = False, verified: bool = False,
               rotate_refresh_tokens: bool = False) -> tuple[Client, str | None]:
        """Register a client; returns it with its secret, shown this once (None if public)."""
        secret = None if public else new_token()
        branding = replace(branding or Branding(display_name=name), display_name=name)
        client = Client(
            client_id=new_id("cli_"),
            secret_hash=None if secret is None else self._keys.secret_digest(secret),
            redirect_uris=tuple(redirect_uris),
            allowed_scopes=tuple(scopes),
            branding=branding,
            public=public,
            legacy_no_pkce=legacy_no_pkce and not public,
            verified=verified,
            rotate_refresh_tokens=rotate_refresh_tokens and not public,
        )
        _validate(client)
        with self._engine.begin() as conn:
            conn.execute(insert(clients).values(**_row(client), created_at=datetime.now(UTC)))
            if secret is not None and self.keeper is not None:
                self.keeper.keep(client.client_id, secret, None)  # raises: no client either
        return client, secret

    def find(self, client_id: str) -> Client | None:
        cached = self._cache.get(client_id)
        if cached is not None:
            return cached
        with self._engine.connect() as conn:
            row = conn.execute(_FIND, {"client_id": client_id}).first()
        if row is None:
            return None
        client = _client(row._mapping)
        self._cache.set(client_id, client)
        return client

    def find_by_secret(self, secret: str) -> Client | None:
        """The confidential client whose current secret (or previous one, during a
        rotation's overlap) is ``secret``: Cronofy's app-level calls send
        ``Authorization: Bearer <client_secret>`` without the client id. Secrets are 256-bit
        random tokens, so the keyed digest names at most one client."""
        digest = self._keys.secret_digest(secret)
        query = select(clients).where(or_(clients.c.secret_hash == digest,
                                          clients.c.previous_secret_hash == digest))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        found = [_client(r._mapping) for r in rows]
        return next((c for c in found if c.accepts_digest(digest)), None)

    def list(self) -> list[Client]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(clients).order_by(clients.c.created_at)).all()
        return [_client(r._mapping) for r in rows]

    def rotate_secret(self, client_id: str, overlap_seconds: float = 0) -> str:
        """Issue a new secret; existing tokens stay valid.

        With ``overlap_seconds`` > 0 the old secret keeps authenticating that long, so the
        app can be redeployed without downtime (an older previous secret ends now); with 0
        the old secret stops working at once.
        """
        if not (math.isfinite(overlap_seconds) and 0 <= overlap_seconds <= MAX_OVERLAP):
            raise ClientError(f"the overlap must be between 0 and {MAX_OVERLAP} seconds")
        secret = new_token()
        rotated = datetime.now(UTC)
        until = rotated + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
        with self._engine.begin() as conn:
            # In UPDATE ... SET the right-hand ``secret_hash`` is the row's value before it.
            done = conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id, clients.c.public.is_(False))
                .values(secret_hash=self._keys.secret_digest(secret),
                        secret_rotated_at=rotated,
                        previous_secret_hash=None if until is None else clients.c.secret_hash,
                        previous_secret_until=until)
            ).rowcount
            if done and self.keeper is not None:
                self.keeper.keep(client_id, secret, until)  # raises: the rotation rolls back
        self._cache.discard(client_id)
        if not done:
            raise ClientError(f"no confidential client {client_id}")
        return secret

    def update(self, client_id: str, *, rotate_refresh_tokens: bool | None = None) -> Client:
        """Change a client's settings (only what is given); the changed client.

        Turning rotation on or off applies from each grant's next refresh: a kept refresh
        token is rotated at its next use, and a rotating grant keeps its newest one.
        """
        values: dict[str, object] = {}
        if rotate_refresh_tokens is not None:
            values["rotate_refresh_tokens"] = rotate_refresh_tokens
        with self._engine.begin() as conn:
            current = conn.execute(_FIND, {"client_id": client_id}).first()
            if current is None:
                raise ClientError(f"no client {client_id}")
            if values.get("rotate_refresh_tokens") is False and current._mapping["public"]:
                raise ClientError("a public client always rotates its refresh tokens")
            if values:
                conn.execute(update(clients).where(clients.c.client_id == client_id)
                             .values(**values))
        self._cache.discard(client_id)
        found = self.find(client_id)
        assert found is not None
        return found

    def delete(self, client_id: str) -> bool:
        """Remove the client; its codes, token families and flows go with it (FK cascade)."""
        from .tables import codes, families, tokens, transactions

        self._cache.discard(client_id)

        with self._engine.begin() as conn:
            family_ids = select(families.c.id).where(families.c.client_id == client_id)
            conn.execute(delete(tokens).where(tokens.c.family_id.in_(family_ids)))
            conn.execute(delete(families).where(families.c.client_id == client_id))
            conn.execute(delete(codes).where(codes.c.client_id == client_id))
            conn.execute(delete(transactions).where(transactions.c.client_id == client_id))
            done = bool(conn.execute(delete(clients).where(clients.c.client_id == client_id))
                        .rowcount)
            if self.keeper is not None:
                self.keeper.forget(client_id)  # also when unknown here: no orphan survives
            return done


def _row(client: Client) -> dict[str, object]:
    b = client.branding
    return {
        "client_id": client.client_id,
        "secret_hash": client.secret_hash,
        "name": b.display_name,
        "redirect_uris": list(client.redirect_uris),
        "allowed_scopes": " ".join(client.allowed_scopes),
        "public": client.public,
        "legacy_no_pkce": client.legacy_no_pkce,
        "verified": client.verified,
        "rotate_refresh_tokens": client.rotate_refresh_tokens,
        "previous_secret_hash": client.previous_secret_hash,
        "previous_secret_until": client.previous_secret_until,
        "logo_url": b.logo_url,
        "accent_color": b.accent_color,
        "privacy_policy_url": b.privacy_policy_url,
        "support_url": b.support_url,
    }


def _client(m: object) -> Client:
    from collections.abc import Mapping

    assert isinstance(m, Mapping)
    return Client(
        client_id=m["client_id"],
        secret_hash=m["secret_hash"],
        redirect_uris=tuple(m["redirect_uris"]),
        allowed_scopes=tuple(str(m["allowed_scopes"]).split()),
        branding=Branding(
            display_name=m["name"],
            logo_url=m["logo_url"],
            accent_color=m["accent_color"],
            privacy_policy_url=m["privacy_policy_url"],
            support_url=m["support_url"],
        ),
        public=bool(m["public"]),
        legacy_no_pkce=bool(m["legacy_no_pkce"]),
        verified=bool(m["verified"]),
        previous_secret_hash=m["previous_secret_hash"],
        previous_secret_until=_aware(m["previous_secret_until"]),
        rotate_refresh_tokens=bool(m["rotate_refresh_tokens"]),
    )


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every one we store is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_FIND = select(clients).where(clients.c.client_id == bindparam("client_id"))
