"""Persistence of codes, token families and tokens, with atomic consumption.

Every state change that must happen at most once (redeeming a code, rotating a refresh
token) is a conditional UPDATE whose row count says who won, so it holds under concurrency
on SQLite and PostgreSQL alike, across any number of API processes.

The refresh grant is the hot path (bench/HOTSPOTS.md): its statements run as DB-API
statements compiled once per dialect (:class:`Prepared`), and the token endpoint's batches
commit their rotations together (:meth:`GrantStore.batch`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection

from .cache import TtlCache
from .crypto import ServerKeys, new_id, new_token, seal_with_token, unseal_with_token
from .grant_records import CodeRecord, Issued, Lifetimes, RefreshRecord, TokenInfo, _aware, now
from .prepared import Checkpointer, Prepared
from .tables import codes, families, tokens

__all__ = ["CODE_REUSE", "REFRESH_REUSE", "STOLEN", "CodeRecord", "GrantStore", "Issued",
           "Lifetimes", "RefreshRecord", "RotationBatch", "TokenInfo", "_aware", "now"]
log = logging.getLogger("calgate.oauth")
# Why a family was revoked as stolen: the audit log says so when its authorization ends.
CODE_REUSE = "code_reuse"
REFRESH_REUSE = "refresh_token_reuse"
STOLEN = (CODE_REUSE, REFRESH_REUSE)
_NO_LOCK = nullcontext()
_BATCH: ContextVar[RotationBatch | None] = ContextVar("calgate_rotation_batch", default=None)


class GrantStore:
    """Codes and tokens, stored only as keyed digests."""

    def __init__(self, engine: Engine, keys: ServerKeys, lifetimes: Lifetimes,
                 clock: Callable[[], datetime] = now) -> None:
        self.engine = engine
        self.keys = keys
        self.lifetimes = lifetimes
        # Every expiry is judged, and every timestamp written, by this clock (tests swap in
        # a simulated one to live through a month of refreshes without waiting for it).
        self.clock = clock
        self._valid: TtlCache[str, TokenInfo] = TtlCache(lifetimes.cache)
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
        # handler (which sleeps up to 100 ms between tries) keeps the latency tail short.
        self._write_lock = Lock() if engine.dialect.name == "sqlite" else None
        dialect = engine.dialect
        self._find_refresh = Prepared(_FIND_REFRESH, dialect)
        self._rotate = Prepared(_ROTATE, dialect)
        self._insert_token = Prepared(_INSERT_PAIR, dialect)
        self._prune = Prepared(_PRUNE, dialect)
        self._keep = Prepared(_KEEP, dialect)
        self._prune_access = Prepared(_PRUNE_ACCESS, dialect)
        self._checkpoints = Checkpointer(engine) if dialect.name == "sqlite" else None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[RotationBatch]:
        """Group commit for the token requests run while it is open (in this thread).

        Their statements share one pooled connection, and their rotations wait for
        :meth:`RotationBatch.commit`, which applies them all in one transaction.
        """
        conn = self.engine.raw_connection()
        batch = RotationBatch(self, conn)
        token = _BATCH.set(batch)
        try:
            if self._checkpoints is None:
                yield batch
            else:
                with self._checkpoints.deferred(conn):
                    yield batch
        finally:
            _BATCH.reset(token)
            conn.close()

    @contextmanager
    def _raw(self) -> Iterator[DBAPIConnection]:
        """A pooled DB-API connection (the batch's, inside one); rolled back when returned."""
        batch = _BATCH.get()
        if batch is not None:
            yield batch.conn
            return
        conn = self.engine.raw_connection()
        try:
            yield conn
        finally:
            conn.close()

    # -- authorization codes ----------------------------------------------------------
    def save_code(self, *, client_id: str, redirect_uri: str, scope: str, subject: str,
                  linking_profile: dict[str, Any] | None, code_challenge: str | None) -> str:
        code = new_token()
        t = self.clock()
        with self._begin() as conn:
            conn.execute(insert(codes).values(
                code_hash=self.keys.token_digest(code), client_id=client_id,
                redirect_uri=redirect_uri, scope=scope, subject=subject,
                linking_profile=linking_profile,
                code_challenge=code_challenge, created_at=t,
                expires_at=t + timedelta(seconds=self.lifetimes.code)))
        return code

    def find_code(self, code: str, client_id: str) -> CodeRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(codes).where(
                codes.c.code_hash == self.keys.token_digest(code),
                codes.c.client_id == client_id)).first()
        if row is None:
            return None
        m = row._mapping
        return CodeRecord(
            code_hash=m["code_hash"], client_id=m["client_id"], redirect_uri=m["redirect_uri"],
            scope=m["scope"], subject=m["subject"], linking_profile=m["linking_profile"],
            code_challenge=m["code_challenge"], expired=_aware(m["expires_at"]) <= self.clock(),
            used=m["used_at"] is not None, family_id=m["family_id"])

    def redeem_code(self, record: CodeRecord) -> Issued | None:
        """Consume the code and issue a new token family; None if someone else redeemed it."""
        with self._begin() as conn:
            won = conn.execute(update(codes).where(
                codes.c.code_hash == record.code_hash, codes.c.used_at.is_(None)
            ).values(used_at=self.clock())).rowcount
            if won != 1:
                return None
            family_id, issued = self._new_family(conn, record.client_id, record.subject,
                                                 record.scope)
            conn.execute(update(codes).where(codes.c.code_hash == record.code_hash)
                         .values(family_id=family_id))
        return issued

    def issue(self, client_id: str, subject: str, scope: str) -> Issued:
        """A new token family without a code: the client authenticated itself for an account
        it owns (an application calendar)."""
        with self._begin() as conn:
            return self._new_family(conn, client_id, subject, scope)[1]

    def revoke_code_family(self, code_hash: str) -> str | None:
        """A used code came back: revoke what its first redemption issued (RFC 6749 s4.1.2).

        The subject of that family, if there was one (the caller ends its authorization).
        """
        with self._begin() as conn:
            family_id = conn.execute(select(codes.c.family_id)
                                     .where(codes.c.code_hash == code_hash)).scalar()
            if not family_id:
                return None
            self._revoke_families(conn, families.c.id == family_id, CODE_REUSE)
            return conn.execute(select(families.c.subject)
                                .where(families.c.id == family_id)).scalar()

    def delete_expired_codes(self) -> int:
        with self._begin() as conn:
            return conn.execute(delete(codes).where(codes.c.expires_at < self.clock())).rowcount

    def delete_expired_tokens(self) -> int:
        """Housekeeping: expired tokens go, and successors sealed for the grace window too.

        Rotated-out tokens need no housekeeping: each rotation deletes the family's rows
        older than the token it consumed (:meth:`_apply`).
        """
        t = self.clock()
        with self._begin() as conn:
            gone = conn.execute(delete(tokens).where(tokens.c.expires_at < t)).rowcount
            conn.execute(update(tokens).where(
                tokens.c.successor.is_not(None),
                tokens.c.rotated_at < t - timedelta(seconds=self.lifetimes.grace)
            ).values(successor=None))
            conn.execute(delete(families).where(families.c.expires_at < t))
        return int(gone)

    # -- token families ---------------------------------------------------------------
    def _new_family(self, conn: Connection, client_id: str, subject: str,
                    scope: str) -> tuple[str, Issued]:
        family_id = new_id("fam_")
        t = self.clock()
        conn.execute(insert(families).values(
            id=family_id, client_id=client_id, subject=subject, scope=scope, created_at=t,
            expires_at=t + timedelta(seconds=self.lifetimes.refresh)))
        pair = self._new_pair(family_id, 0, scope)
        conn.execute(_INSERT_PAIR, self._pair_rows(pair, family_id, scope, t, 0))
        return family_id, pair

    def _new_pair(self, family_id: str, generation: int, access_scope: str) -> Issued:
        return Issued(new_token(), self.keys.refresh_token(family_id, generation),
                      self.lifetimes.access, access_scope)

    def _pair_rows(self, pair: Issued, family_id: str, refresh_scope: str,
                   t: datetime, generation: int) -> list[dict[str, Any]]:
        """The two ``tokens`` rows of a new access/refresh pair."""
        return [
            {"token_hash": self.keys.token_digest(pair.access_token), "kind": "access",
             "family_id": family_id, "scope": pair.scope, "created_at": t,
             "expires_at": t + timedelta(seconds=self.lifetimes.access),
             "generation": generation},
            {"token_hash": self.keys.token_digest(pair.refresh_token), "kind": "refresh",
             "family_id": family_id, "scope": refresh_scope, "created_at": t,
             "expires_at": t + timedelta(seconds=self.lifetimes.refresh_idle),
             "generation": generation},
        ]

    def _revoke_families(self, conn: Connection, where: Any, reason: str) -> None:
        ids = [r[0] for r in conn.execute(select(families.c.id).where(where)).all()]
        if not ids:
            return
        conn.execute(update(families).where(families.c.id.in_(ids), families.c.revoked_at.is_(None))
                     .values(revoked_at=self.clock(), revoked_reason=reason))
        conn.execute(delete(tokens).where(tokens.c.family_id.in_(ids)))
        self._valid.clear()  # revocations are rare: forget every cached validation

    def stolen_subjects(self) -> list[tuple[str, str]]:
        """(subject, reason) of families revoked as stolen whose authorization has not ended.

        Ending it erases the families (:meth:`revoke_subject`); one that is left means the
        erasure failed part-way, and housekeeping tries again.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(select(families.c.subject, families.c.revoked_reason)
                                .where(families.c.revoked_reason.in_(STOLEN))
                                .distinct()).all()
        return [(r[0], r[1]) for r in rows]

    def revoke_family(self, family_id: str, reason: str) -> str | None:
        """Revoke one family; its subject, if it exists."""
        with self._begin() as conn:
            self._revoke_families(conn, families.c.id == family_id, reason)
            return conn.execute(select(families.c.subject)
                                .where(families.c.id == family_id)).scalar()

    def revoke_subject(self, subject: str, reason: str) -> None:
        """The authorization ended: nothing of the subject stays, not even revoked families."""
        with self._begin() as conn:
            self._revoke_families(conn, families.c.subject == subject, reason)
            conn.execute(delete(families).where(families.c.subject == subject))
            conn.execute(delete(codes).where(codes.c.subject == subject))

    # -- refresh tokens ---------------------------------------------------------------
    def find_refresh(self, refresh_token: str) -> RefreshRecord | None:
        digest = self.keys.token_digest(refresh_token)
        with self._raw() as conn:
            m = self._find_refresh.one(conn, {"digest": digest})
        if m is None:
            return None
        t = self.clock()
        live = (m["revoked_at"] is None and _aware(m["family_expires"]) > t
                and _aware(m["expires_at"]) > t)
        return RefreshRecord(
            token_hash=m["token_hash"], family_id=m["family_id"], client_id=m["client_id"],
            subject=m["subject"], scope=m["family_scope"],
            rotated_at=None if m["rotated_at"] is None else _aware(m["rotated_at"]),
            successor=m["successor"], live=live, generation=int(m["generation"]))

    def find_superseded(self, refresh_token: str, client_id: str) -> tuple[str, str] | None:
        """(family, subject) of a refresh token of ``client_id`` that rotations superseded.

        Its row is gone (:meth:`_apply`), but the token says which family and generation it
        belongs to; the family's newest refresh row says how far rotation went. None for
        anything else: garbage, another client's token, an expired or revoked family.
        """
        found = self.keys.read_refresh_token(refresh_token)
        if found is None:
            return None
        family_id, generation = found
        with self.engine.connect() as conn:
            row = conn.execute(_NEWEST, {"family": family_id}).first()
        if row is None or row.client_id != client_id or row.newest is None:
            return None
        if row.revoked_at is not None or _aware(row.expires_at) <= self.clock():
            return None
        return (family_id, row.subject) if generation < row.newest else None

    def rotate(self, record: RefreshRecord, presented: str, access_scope: str) -> Issued | None:
        """Swap ``presented`` for a new pair; None if it was already rotated (caller decides).

        Inside a :meth:`batch` the rotation is only queued and the pair returned at once; the
        batch's commit says whether it won, and a loser's request is run again.
        """
        generation = record.generation + 1
        pair = self._new_pair(record.family_id, generation, access_scope)
        sealed = seal_with_token(presented, pair.as_dict()) if self.lifetimes.grace else None
        t = self.clock()
        rotation = _Rotation(record.token_hash, t, sealed,
                             self._pair_rows(pair, record.family_id, record.scope, t,
                                             generation),
                             record.family_id, record.generation)
        batch = _BATCH.get()
        if batch is not None:
            batch.pending.append(rotation)
            return pair
        with self._raw() as conn:
            return pair if self._apply(conn, [rotation]) == [True] else None

    def keep(self, record: RefreshRecord, presented: str, access_scope: str) -> Issued | None:
        """A new access token, ``presented`` kept as the refresh token (a non-rotating client).

        The refresh token's idle expiry starts again (the family's absolute lifetime still
        bounds it); its row's generation counts the refreshes, so that, as with rotation, the
        access token of the previous refresh stays valid until it expires and older ones end.
        None if ``presented`` was rotated meanwhile (the caller decides, as for
        :meth:`rotate`). Queued inside a :meth:`batch` like a rotation.
        """
        generation = record.generation + 1
        access = new_token()
        t = self.clock()
        row = {"token_hash": self.keys.token_digest(access), "kind": "access",
               "family_id": record.family_id, "scope": access_scope, "created_at": t,
               "expires_at": t + timedelta(seconds=self.lifetimes.access),
               "generation": generation}
        renewal = _Rotation(record.token_hash, t, None, [row], record.family_id,
                            record.generation, kept_until=t + timedelta(
                                seconds=self.lifetimes.refresh_idle))
        pair = Issued(access, presented, self.lifetimes.access, access_scope)
        batch = _BATCH.get()
        if batch is not None:
            batch.pending.append(renewal)
            return pair
        with self._raw() as conn:
            return pair if self._apply(conn, [renewal]) == [True] else None

    def _apply(self, conn: DBAPIConnection, rotations: Sequence[_Rotation]) -> list[bool]:
        """Each conditional UPDATE decides; winners insert their new pair; one COMMIT.

        A winner also deletes its family's rows older than the token it consumed: the
        consumed pair stays for the grace window's retries, the newer one is current, and
        an older refresh token, if it comes back, is recognised as reuse by what it carries
        (:meth:`find_superseded`). So a family keeps at most four rows however often it
        refreshes, and access tokens two rotations old stop working (RFC 6749 s6 allows
        either).

        Rows are updated in digest order (ties in the given order), so batches committing
        at once on PostgreSQL lock shared rows in the same order and cannot deadlock.
        """
        won = [False] * len(rotations)
        with self._write_lock or _NO_LOCK:
            try:
                for i in sorted(range(len(rotations)), key=lambda i: rotations[i].digest):
                    rotation = rotations[i]
                    if rotation.kept_until is not None:
                        won[i] = self._renew(conn, rotation)
                        continue
                    won[i] = self._rotate.run(conn, {
                        "digest": rotation.digest, "at": rotation.at,
                        "sealed": rotation.sealed}) == 1
                    if won[i]:
                        self._insert_token.run_many(conn, rotation.rows)
                        self._prune.run(conn, {"family": rotation.family_id,
                                               "below": rotation.consumed})
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return won

    def _renew(self, conn: DBAPIConnection, renewal: _Rotation) -> bool:
        """:meth:`keep`'s statements: the kept token's row, the new access token, pruning."""
        kept = self._keep.run(conn, {"digest": renewal.digest, "until": renewal.kept_until,
                                     "generation": renewal.consumed + 1}) == 1
        if kept:
            self._insert_token.run_many(conn, renewal.rows)
            self._prune_access.run(conn, {"family": renewal.family_id,
                                          "below": renewal.consumed})
        return kept

    def successor_in_grace(self, presented: str) -> Issued | None:
        """The pair a rotation of ``presented`` produced, if still inside the grace window."""
        record = self.find_refresh(presented)
        if record is None or not record.live or record.rotated_at is None:
            return None
        if self.clock() - record.rotated_at > timedelta(seconds=self.lifetimes.grace):
            return None
        if record.successor is None:
            return None
        data = unseal_with_token(presented, record.successor)
        if data is None:
            return None
        return Issued(data["access_token"], data["refresh_token"], int(data["expires_in"]),
                      data["scope"])

    # -- access tokens ----------------------------------------------------------------
    async def load_access(self, access_token: str) -> TokenInfo | None:
        """``validate_access`` through the short-lived cache, one query per token at a time."""
        digest = self.keys.token_digest(access_token)
        info = await self._valid.load(digest, lambda: self.validate_access(access_token))
        return info if info is not None and info.expires_at > self.clock() else None

    def validate_access(self, access_token: str) -> TokenInfo | None:
        digest = self.keys.token_digest(access_token)
        with self.engine.connect() as conn:
            row = conn.execute(_VALIDATE, {"digest": digest}).first()
        if row is None:
            return None
        expires = _aware(row.expires_at)
        if expires <= self.clock():
            return None
        info = TokenInfo(subject=row.subject, client_id=row.client_id,
                         scope=tuple(row.scope.split()), expires_at=expires,
                         family_id=row.family_id)
        self._valid.set(digest, info)
        return info

    def lookup_any(self, token: str) -> Mapping[str, Any] | None:
        """Any access or refresh token, expired or not, with its family (for revocation)."""
        query = (select(tokens.c.kind, tokens.c.scope, tokens.c.expires_at, tokens.c.family_id,
                        families.c.client_id, families.c.subject, families.c.revoked_at)
                 .join(families, families.c.id == tokens.c.family_id)
                 .where(tokens.c.token_hash == self.keys.token_digest(token)))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def subject_has_tokens(self, subject: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(families.c.id).where(
                families.c.subject == subject, families.c.revoked_at.is_(None))).first() is not None

    def subject_belongs(self, subject: str, client_id: str) -> bool:
        """Did ``client_id`` ever get a token family for ``subject``?"""
        with self.engine.connect() as conn:
            return conn.execute(select(families.c.id).where(
                families.c.subject == subject, families.c.client_id == client_id)
            ).first() is not None

    def introspect(self, token: str) -> dict[str, Any] | None:
        """RFC 7662 fields for a live token, or None."""
        found = self.lookup_any(token)
        if found is None or found["revoked_at"] is not None:
            return None
        if _aware(found["expires_at"]) <= self.clock():
            return None
        if found["kind"] == "refresh":
            record = self.find_refresh(token)
            if record is None or not record.live or record.rotated_at is not None:
                return None
        return {"active": True, "scope": found["scope"], "client_id": found["client_id"],
                "sub": found["subject"], "exp": int(_aware(found["expires_at"]).timestamp()),
                "token_type": "Bearer" if found["kind"] == "access" else "refresh_token"}


# Built once: the hot path pays only for execution, not for statement construction.
_VALIDATE = (select(tokens.c.scope, tokens.c.expires_at, tokens.c.family_id,
                    families.c.client_id, families.c.subject)
             .join(families, families.c.id == tokens.c.family_id)
             .where(and_(tokens.c.token_hash == bindparam("digest"), tokens.c.kind == "access",
                         families.c.revoked_at.is_(None))))

_FIND_REFRESH = (select(tokens, families.c.client_id, families.c.subject,
                        families.c.scope.label("family_scope"),
                        families.c.expires_at.label("family_expires"), families.c.revoked_at)
                 .join(families, families.c.id == tokens.c.family_id)
                 .where(tokens.c.token_hash == bindparam("digest"), tokens.c.kind == "refresh"))
_INSERT_PAIR = insert(tokens).values({c: bindparam(c) for c in (
    "token_hash", "kind", "family_id", "scope", "created_at", "expires_at", "generation")})
_PRUNE = delete(tokens).where(tokens.c.family_id == bindparam("family"),
                              tokens.c.generation < bindparam("below"))
_NEWEST = (select(families.c.client_id, families.c.subject, families.c.revoked_at,
                  families.c.expires_at,
                  select(func.max(tokens.c.generation))
                  .where(tokens.c.family_id == families.c.id, tokens.c.kind == "refresh")
                  .scalar_subquery().label("newest"))
           .where(families.c.id == bindparam("family")))
# A kept refresh token: idle expiry restarts, the generation counts the refresh. A token
# rotated meanwhile (its client turned rotation on) is left alone: reuse rules apply.
_KEEP = (update(tokens)
         .where(tokens.c.token_hash == bindparam("digest"), tokens.c.rotated_at.is_(None))
         .values(expires_at=bindparam("until"), generation=bindparam("generation")))
_PRUNE_ACCESS = delete(tokens).where(tokens.c.family_id == bindparam("family"),
                                     tokens.c.kind == "access",
                                     tokens.c.generation < bindparam("below"))
_ROTATE = (update(tokens)
           .where(tokens.c.token_hash == bindparam("digest"), tokens.c.rotated_at.is_(None))
           .values(rotated_at=bindparam("at"), successor=bindparam("sealed")))


@dataclass(frozen=True, slots=True)
class _Rotation:
    digest: str
    at: datetime
    sealed: bytes | None
    rows: list[dict[str, Any]]
    family_id: str
    consumed: int  # the generation of the token this rotation consumes
    # Set for :meth:`GrantStore.keep`: the presented token stays, idle until then.
    kept_until: datetime | None = None


class RotationBatch:
    """Rotations queued by the token requests of one batch, committed together.

    SQLite commits one transaction at a time, and each commit is a large part of a
    refresh grant's cost; a batch pays for one. Each rotation is still its own conditional
    UPDATE, so a token rotated meanwhile (by another request of the batch or another
    process) loses exactly as it would alone.
    """

    def __init__(self, store: GrantStore, conn: DBAPIConnection) -> None:
        self.conn = conn
        self.pending: list[_Rotation] = []
        self._store = store

    def commit(self) -> list[bool]:
        """Apply the queued rotations in one transaction; whether each won, in order.

        If the transaction fails, nothing was applied and every rotation counts as lost.
        """
        rotations, self.pending = self.pending, []
        if not rotations:
            return []
        try:
            return self._store._apply(self.conn, rotations)
        except Exception:
            log.warning("group commit of %d rotations failed; retrying each alone",
                        len(rotations), exc_info=True)
            return [False] * len(rotations)
