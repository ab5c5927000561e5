"""Accounts and profiles: linking upstream calendars, describing them, and erasing them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from secrets import token_urlsafe
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, delete, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from providers.model import Calendar

from ..domain.ids import new_id
from ..domain.mirror import Policy
from ..persistence.cursors import reset_cursors
from ..persistence.generation import bump_generation
from ..persistence.tables import accounts, audit_log, calendars, link_tokens, profiles
from ..secrets import SecretStore
from .calendars import calendar_body, save_calendar
from .relink import marker

log = logging.getLogger("calgate.accounts")
LINK_TOKEN_TTL = timedelta(minutes=10)  # a link token is used at once, on another device


@dataclass(frozen=True, slots=True)
class PendingAccount:
    """A verified upstream account whose credentials are parked at ``credential_path``.

    ``name``/``tzid`` are the account's where the provider says; ``calendars`` its calendar
    list as read while linking (None: not read; the first sync lists it).
    """

    provider_name: str
    provider_service: str
    profile_name: str
    upstream_id: str
    credential_path: str
    name: str | None = None
    tzid: str | None = None
    calendars: tuple[Calendar, ...] | None = None


class LinkTokenUnusable(Exception):
    """The link token is unknown, expired, used, or another client app's."""


class RelinkMismatch(Exception):
    """The account signed in at a relink is not the profile's upstream account."""


class RelinkGone(Exception):
    """The profile was reconnected or erased since the relink URL was made."""


@dataclass(frozen=True, slots=True)
class OwnedAccount:
    """An account a client app owns, kept by Calgate (an application calendar)."""

    provider_name: str
    provider_service: str
    name: str  # the app's own id for it; also the profile's name
    credentials: Mapping[str, str]  # what the provider opens it with (nothing secret)


@dataclass(frozen=True, slots=True)
class Linked:
    subject: str
    profile_id: str
    provider_name: str
    provider_service: str
    profile_name: str


@dataclass(frozen=True, slots=True)
class Identity:
    """An account row and its profile rows, as the identity endpoints show them, and its
    calendars as ``GET /v1/calendars`` lists them (userinfo's ``profile_calendars``)."""

    account: dict[str, Any]
    profiles: tuple[dict[str, Any], ...]
    calendars: tuple[dict[str, Any], ...] = ()


class Cache(Protocol):
    """A short-lived cache (the composition root passes a TTL cache in)."""

    def get(self, key: str) -> Identity | None: ...
    def set(self, key: str, value: Identity) -> None: ...
    def clear(self) -> None: ...
    async def load(self, key: str, loader: Callable[[], Identity | None]) -> Identity | None: ...


class _NoCache:
    def get(self, key: str) -> Identity | None:
        return None

    def set(self, key: str, value: Identity) -> None:
        return None

    def clear(self) -> None:
        return None

    async def load(self, key: str, loader: Callable[[], Identity | None]) -> Identity | None:
        from anyio import to_thread

        return await to_thread.run_sync(loader)


class AccountService:
    """Owns the accounts and profiles tables and the credentials they point at."""

    def __init__(self, engine: Engine, secrets: SecretStore, cache: Cache | None = None) -> None:
        self.engine = engine
        self.secrets = secrets
        self.cache: Cache = cache or _NoCache()
        # Called with a profile id before its credentials are erased: stops the provider's
        # push channels and revokes the upstream grant (the composition root sets it).
        self.release: Callable[[str], None] | None = None

    def park_credentials(self, flow_id: str, credentials: Mapping[str, str]) -> str:
        """Keep verified credentials while the user decides; returns their secret path."""
        path = f"pending/{flow_id}"
        self.secrets.put(path, credentials)
        return path

    def discard(self, credential_path: str) -> None:
        self.secrets.delete(credential_path)

    def link(self, client_id: str, pending: PendingAccount, link_key: str | None,
             scope: Sequence[str] = (), link_token: str | None = None) -> Linked:
        """Attach a verified upstream account to the subject this browser already has, if any
        (or, with ``link_token``, the digest :meth:`find_link_token` gave, to the subject
        that minted it: the token is used up here, or LinkTokenUnusable is raised).

        The same upstream account linked again keeps its profile id (a relink). The calendar
        list read while linking is stored in the same transaction, so the app's first
        ``GET /v1/calendars`` is complete.
        """
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            subject = None
            if link_token is not None:
                subject = _use_link_token(conn, link_token, client_id, now)
                if subject is None:
                    raise LinkTokenUnusable()
            elif link_key is not None:
                subject = conn.execute(select(accounts.c.id).where(
                    accounts.c.client_id == client_id, accounts.c.link_key_hash == link_key)
                ).scalar()
            if subject is None:
                subject = new_id("acc_")
                conn.execute(insert(accounts).values(
                    id=subject, client_id=client_id, email=_email(pending.profile_name),
                    name=pending.name, default_tzid=_zone_of(pending),
                    link_key_hash=link_key, data_key_wrapped=self.secrets.new_data_key().wrapped,
                    scope=" ".join(scope), created_at=now))
            else:
                _fill_details(conn, subject, pending)
                granted = conn.execute(select(accounts.c.scope).where(
                    accounts.c.id == subject)).scalar_one().split()
                union = granted + [s for s in scope if s not in granted]
                conn.execute(update(accounts).where(accounts.c.id == subject)
                             .values(scope=" ".join(union)))
                if _keeps_more(subject, granted, union):
                    _resync(conn, subject, now)
            profile_id = conn.execute(select(profiles.c.id).where(
                profiles.c.account_id == subject,
                profiles.c.provider_name == pending.provider_name,
                profiles.c.upstream_id == _digest(pending.upstream_id))).scalar()
            if profile_id is None:
                profile_id = new_id("pro_")
                conn.execute(insert(profiles).values(
                    id=profile_id, account_id=subject, provider_name=pending.provider_name,
                    provider_service=pending.provider_service,
                    profile_name=pending.profile_name,
                    upstream_id=_digest(pending.upstream_id),
                    credential_path=f"profiles/{profile_id}/credentials", connected=True,
                    initial_sync_required=True, created_at=now, next_sync_at=now))
            else:
                _reconnect(conn, profile_id, pending, now)
            _save_listing(conn, profile_id, pending.calendars, now)
            _audit(conn, "link_profile", subject, {"profile_id": profile_id,
                                                   "provider": pending.provider_name})
        self._keep_credentials(profile_id, pending)
        return Linked(subject, profile_id, pending.provider_name, pending.provider_service,
                      pending.profile_name)

    def _keep_credentials(self, profile_id: str, pending: PendingAccount) -> None:
        self.cache.clear()
        self.secrets.put(f"profiles/{profile_id}/credentials",
                         self.secrets.get(pending.credential_path))
        self.secrets.delete(pending.credential_path)

    # -- relinking a disconnected profile (services/relink.py signs its URL) -------------
    def find_relink_target(self, profile_id: str, disconnected: int) -> dict[str, Any] | None:
        """The profile (with its account's client and scope) while it is still the
        disconnected one a relink token names; None once reconnected, re-disconnected or
        erased."""
        query = (select(profiles, accounts.c.client_id, accounts.c.scope)
                 .join(accounts, accounts.c.id == profiles.c.account_id)
                 .where(profiles.c.id == profile_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.connected or marker(row.disconnected_at) != disconnected:
            return None
        return dict(row._mapping)

    def relink(self, profile_id: str, disconnected: int, pending: PendingAccount) -> Linked:
        """Restore a disconnected profile's credentials: same upstream account only.

        The profile keeps its id, its account (``sub``) and its calendars' ids; the mirror is
        kept, and the next sync (due now) catches up from the stored cursors. Raises
        RelinkMismatch for another upstream account, RelinkGone when the profile is no
        longer the disconnected one the relink URL named.
        """
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(select(profiles).where(profiles.c.id == profile_id)
                               .with_for_update()).first()
            if row is None or row.connected or marker(row.disconnected_at) != disconnected:
                raise RelinkGone(profile_id)
            if row.provider_name != pending.provider_name or \
                    row.upstream_id != _digest(pending.upstream_id):
                raise RelinkMismatch(profile_id)
            _reconnect(conn, profile_id, pending, now)
            _save_listing(conn, profile_id, pending.calendars, now)
            _fill_details(conn, row.account_id, pending)
            _audit(conn, "relink_profile", row.account_id, {"profile_id": profile_id})
        self._keep_credentials(profile_id, pending)
        return Linked(row.account_id, profile_id, row.provider_name, row.provider_service,
                      pending.profile_name)

    # -- link tokens (POST /v1/link_tokens) ------------------------------------------------
    def mint_link_token(self, subject: str, client_id: str) -> str:
        """A new single-use link token for ``subject``, valid LINK_TOKEN_TTL, for
        ``client_id`` only; only its digest is stored."""
        token = token_urlsafe(32)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(delete(link_tokens).where(link_tokens.c.account_id == subject,
                                                   link_tokens.c.expires_at < now))
            conn.execute(insert(link_tokens).values(
                token_hash=_digest(token), account_id=subject, client_id=client_id,
                created_at=now, expires_at=now + LINK_TOKEN_TTL))
        return token

    def purge_link_tokens(self) -> int:
        """Housekeeping: link tokens used or expired are refused whether their row is there
        or not, so they go; how many went."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(link_tokens).where(
                (link_tokens.c.expires_at < datetime.now(UTC))
                | link_tokens.c.used_at.is_not(None))).rowcount)

    def find_link_token(self, client_id: str, token: str) -> str | None:
        """The digest of a live, unused link token of ``client_id``, else None."""
        digest = _digest(token)
        with self.engine.connect() as conn:
            found = conn.execute(select(link_tokens.c.token_hash).where(
                *_usable(digest, client_id, datetime.now(UTC)))).scalar()
        return None if found is None else str(found)

    def provision_owned(self, client_id: str, owned: OwnedAccount, scope: Sequence[str],
                        listed: Sequence[Calendar] = ()) -> tuple[Linked, bool]:
        """The client app's own account named ``owned.name``, made on first use (an ``apc_``
        subject with one profile, its calendars ``listed`` stored with it); whether it was
        made now. Simultaneous first calls make one account: the unique ``owned_key`` refuses
        the others, which then return the one made."""
        upstream_id = _digest(f"{client_id}\x00{owned.name}")
        found = self._owned(client_id, upstream_id, owned)
        if found is not None:
            return found, False
        now = datetime.now(UTC)
        subject, profile_id = new_id("apc_"), new_id("pro_")
        path = f"profiles/{profile_id}/credentials"
        self.secrets.put(path, owned.credentials)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(accounts).values(
                    id=subject, client_id=client_id, email=None, name=None,
                    default_tzid="Etc/UTC", link_key_hash=None,
                    data_key_wrapped=self.secrets.new_data_key().wrapped,
                    scope=" ".join(scope), owned_key=upstream_id, created_at=now))
                conn.execute(insert(profiles).values(
                    id=profile_id, account_id=subject, provider_name=owned.provider_name,
                    provider_service=owned.provider_service, profile_name=owned.name,
                    upstream_id=upstream_id, credential_path=path, connected=True,
                    initial_sync_required=True, created_at=now, next_sync_at=now))
                for calendar in listed:
                    save_calendar(conn, profile_id, calendar, now)
                _audit(conn, "provision_account", subject, {"profile_id": profile_id,
                                                            "provider": owned.provider_name})
        except IntegrityError:
            self.secrets.delete(path)
            found = self._owned(client_id, upstream_id, owned)
            if found is None:  # not the race with another first call
                raise
            return found, False
        self.cache.clear()
        return Linked(subject, profile_id, owned.provider_name, owned.provider_service,
                      owned.name), True

    def _owned(self, client_id: str, upstream_id: str, owned: OwnedAccount) -> Linked | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(profiles.c.id, profiles.c.account_id)
                                 .join(accounts, accounts.c.id == profiles.c.account_id)
                                 .where(accounts.c.client_id == client_id,
                                        accounts.c.owned_key == upstream_id,
                                        profiles.c.provider_name == owned.provider_name,
                                        profiles.c.upstream_id == upstream_id)).first()
        if found is None:
            return None
        return Linked(found.account_id, found.id, owned.provider_name, owned.provider_service,
                      owned.name)

    def revoke_subject(self, subject: str, reason: str | None = None) -> None:
        """Erase an account: credentials first (for good), then its rows. ``reason`` (why
        the authorization ended) goes into the audit log."""
        with self.engine.connect() as conn:
            found = conn.execute(select(profiles.c.id, profiles.c.credential_path).where(
                profiles.c.account_id == subject)).all()
        for profile_id, path in found:
            self._release(profile_id)
            if path:
                self.secrets.delete(path)
        with self.engine.begin() as conn:
            conn.execute(delete(profiles).where(profiles.c.account_id == subject))
            conn.execute(delete(accounts).where(accounts.c.id == subject))
            _audit(conn, "revoke_account", subject, None if reason is None
                   else {"reason": reason})
        self.cache.clear()

    def _release(self, profile_id: str) -> None:
        if self.release is None:
            return
        try:
            self.release(profile_id)
        except Exception:  # erasure goes on whatever the upstream says
            log.exception("releasing profile %s upstream failed; erasing anyway", profile_id)

    def revoke_client(self, client_id: str) -> None:
        with self.engine.connect() as conn:
            subjects = [r[0] for r in conn.execute(select(accounts.c.id).where(
                accounts.c.client_id == client_id)).all()]
        for subject in subjects:
            self.revoke_subject(subject)

    def revoke_profile(self, subject: str, profile_id: str) -> bool | None:
        """Erase one profile of ``subject``: False if it has no such profile, None if that was
        its last one and the whole account was erased (the caller ends the authorization)."""
        with self.engine.connect() as conn:
            path = conn.execute(select(profiles.c.credential_path).where(
                profiles.c.id == profile_id, profiles.c.account_id == subject)).first()
        if path is None:
            return False
        self._release(profile_id)
        if path[0]:
            self.secrets.delete(path[0])
        with self.engine.begin() as conn:
            conn.execute(delete(profiles).where(profiles.c.id == profile_id))
            bump_generation(conn, account_id=subject)
            _audit(conn, "revoke_profile", subject, {"profile_id": profile_id})
            left = conn.execute(select(profiles.c.id).where(profiles.c.account_id == subject)
                                ).first()
        self.cache.clear()
        if left is None:
            self.revoke_subject(subject)
            return None
        return True

    def find_identity(self, subject: str) -> Identity | None:
        """The account and its profiles, read on one connection (and cached briefly)."""
        cached = self.cache.get(subject)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            account = conn.execute(_ACCOUNT, {"subject": subject}).first()
            if account is None:
                return None
            rows = conn.execute(_PROFILES, {"subject": subject}).all()
            listed = conn.execute(_CALENDARS, {"subject": subject}).all()
        identity = Identity(dict(account._mapping), tuple(dict(r._mapping) for r in rows),
                            tuple(calendar_body(r) for r in listed))
        self.cache.set(subject, identity)
        return identity

    def find_account(self, subject: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).where(accounts.c.id == subject)).first()
        return None if row is None else dict(row._mapping)

    def list_profiles(self, subject: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(profiles).where(profiles.c.account_id == subject)
                                .order_by(profiles.c.created_at, profiles.c.id)).all()
        return [dict(r._mapping) for r in rows]


def _keeps_more(subject: str, granted: Sequence[str], union: Sequence[str]) -> bool:
    """Whether the widened grant lets the mirror keep more (e.g. one-way becomes two-way)."""
    before, after = Policy.for_scope(subject, granted), Policy.for_scope(subject, union)
    return (after.text and not before.text) or (before.only_managed and not after.only_managed)


def _resync(conn: Any, subject: str, now: datetime) -> None:
    """Mirror the account's calendars afresh under the wider grant: a full sync of every
    profile, which ends with a ``change`` covering all its events (sync/engine.py)."""
    owned = select(profiles.c.id).where(profiles.c.account_id == subject)
    reset_cursors(conn, calendars.c.profile_id.in_(owned))
    conn.execute(update(profiles).where(profiles.c.account_id == subject)
                 .values(initial_sync_required=True, next_sync_at=now))


def _reconnect(conn: Any, profile_id: str, pending: PendingAccount, now: datetime) -> None:
    """Working credentials again: sync at once, the failure record cleared. Calendars keep
    their rows and cursors; the listing read now (if any) replaces the stored one."""
    conn.execute(update(profiles).where(profiles.c.id == profile_id).values(
        connected=True, profile_name=pending.profile_name, next_sync_at=now, sync_failures=0,
        last_sync_error=None, disconnected_at=None, calendars_listed_at=None))


def _save_listing(conn: Any, profile_id: str, listed: Sequence[Calendar] | None,
                  now: datetime) -> None:
    """Store the calendar list read while linking, as the sync engine would: known calendars
    keep their ids, new ones get theirs, those no longer listed are marked deleted."""
    if listed is None:
        return
    kept = {save_calendar(conn, profile_id, cal, now) for cal in listed}
    conn.execute(update(calendars).where(calendars.c.profile_id == profile_id,
                                         calendars.c.id.not_in(kept) if kept else true(),
                                         calendars.c.deleted.is_(False))
                 .values(deleted=True))
    conn.execute(update(profiles).where(profiles.c.id == profile_id)
                 .values(calendars_listed_at=now))
    bump_generation(conn, profile_id=profile_id)


def _zone_of(pending: PendingAccount) -> str:
    """The account's zone: the provider's, else the primary calendar's, else UTC; only
    zones this machine's tz database knows."""
    primary = next((c.tzid for c in pending.calendars or () if c.primary and c.tzid), None)
    for candidate in (pending.tzid, primary):
        if candidate and _known_zone(candidate):
            return candidate
    return "Etc/UTC"


def _known_zone(tzid: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _fill_details(conn: Any, subject: str, pending: PendingAccount) -> None:
    """An account linked before it had a name or a zone takes this profile's."""
    row = conn.execute(select(accounts.c.name, accounts.c.default_tzid).where(
        accounts.c.id == subject)).one()
    values: dict[str, Any] = {}
    if not row.name and pending.name:
        values["name"] = pending.name
    zone = _zone_of(pending)
    if row.default_tzid in (None, "", "Etc/UTC") and zone != "Etc/UTC":
        values["default_tzid"] = zone
    if values:
        conn.execute(update(accounts).where(accounts.c.id == subject).values(**values))


def _usable(digest: str, client_id: str, now: datetime) -> tuple[Any, ...]:
    return (link_tokens.c.token_hash == digest, link_tokens.c.client_id == client_id,
            link_tokens.c.used_at.is_(None), link_tokens.c.expires_at > now)


def _use_link_token(conn: Any, digest: str, client_id: str, now: datetime) -> str | None:
    """Use a link token up (atomically: two flows cannot both use it); its account."""
    subject = conn.execute(select(link_tokens.c.account_id).where(
        *_usable(digest, client_id, now))).scalar()
    if subject is None:
        return None
    used = conn.execute(update(link_tokens).where(*_usable(digest, client_id, now))
                        .values(used_at=now)).rowcount
    return str(subject) if used == 1 else None


def _digest(upstream_id: str) -> str:
    """Only a digest of the upstream identity is kept: for feeds it is a URL that often holds
    a secret token, and equality (recognising a relink) is all it is needed for."""
    import hashlib

    return hashlib.sha256(upstream_id.encode()).hexdigest()


def _email(profile_name: str) -> str | None:
    return profile_name if "@" in profile_name else None


def _audit(conn: Any, action: str, subject: str, detail: dict[str, Any] | None) -> None:
    conn.execute(insert(audit_log).values(at=datetime.now(UTC), actor="calgate", action=action,
                                          subject=subject, detail=detail))


_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("subject"))
_PROFILES = (select(profiles).where(profiles.c.account_id == bindparam("subject"))
             .order_by(profiles.c.created_at, profiles.c.id))
_CALENDARS = (select(calendars, profiles.c.provider_name, profiles.c.profile_name)
              .join(profiles, profiles.c.id == calendars.c.profile_id)
              .where(profiles.c.account_id == bindparam("subject"))
              .order_by(profiles.c.created_at, profiles.c.id, calendars.c.created_at,
                        calendars.c.id))
