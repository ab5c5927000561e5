"""Server-side consent transactions (OAUTH.md 34): the browser only holds an id and a cookie."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from .crypto import new_token
from .grants_store import _aware, now
from .ports import PendingLink
from .tables import transactions


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    session_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    provider_name: str | None
    avoid_linking: bool
    pending: PendingLink | None
    expired: bool
    finished: bool
    # The host's reference of a live link_token (authorize's ``link_token``), if any.
    link_token: str | None = None
    # A relink flow: the host's reference of the profile it reconnects (no code at its end;
    # ``redirect_uri`` is "" unless the app named one of its own).
    relink: str | None = None


class FlowStore:
    """Create, read, advance and finish consent flows."""

    def __init__(self, engine: Engine, ttl: int) -> None:
        self.engine = engine
        self.ttl = ttl

    def start(self, *, session_hash: str, client_id: str, redirect_uri: str, scope: str,
              state: str | None, code_challenge: str | None, provider_name: str | None,
              avoid_linking: bool, link_token: str | None = None,
              relink: str | None = None) -> str:
        flow_id = new_token()
        t = now()
        with self.engine.begin() as conn:
            conn.execute(insert(transactions).values(
                id=flow_id, session_hash=session_hash, client_id=client_id,
                redirect_uri=redirect_uri, scope=scope, state=state,
                code_challenge=code_challenge, provider_name=provider_name,
                avoid_linking=avoid_linking, link_key_hash=link_token,
                relink_profile_id=relink, created_at=t,
                expires_at=t + timedelta(seconds=self.ttl)))
        return flow_id

    def find(self, flow_id: str) -> Flow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions).where(transactions.c.id == flow_id)).first()
        if row is None:
            return None
        m = row._mapping
        return Flow(
            id=m["id"], session_hash=m["session_hash"], client_id=m["client_id"],
            redirect_uri=m["redirect_uri"], scope=m["scope"], state=m["state"],
            code_challenge=m["code_challenge"], provider_name=m["provider_name"],
            avoid_linking=bool(m["avoid_linking"]),
            pending=PendingLink.from_json(m["linked"]) if m["linked"] else None,
            expired=_aware(m["expires_at"]) <= now(), finished=m["finished_at"] is not None,
            link_token=m["link_key_hash"], relink=m["relink_profile_id"])

    def choose_provider(self, flow_id: str, provider_name: str | None) -> None:
        self._update(flow_id, provider_name=provider_name, linked=None)

    def set_pending(self, flow_id: str, pending: PendingLink | None) -> None:
        self._update(flow_id, linked=None if pending is None else pending.to_json())

    def finish(self, flow_id: str) -> bool:
        """Mark the flow done; False if it was already finished (a replayed decision)."""
        with self.engine.begin() as conn:
            return conn.execute(update(transactions).where(
                transactions.c.id == flow_id, transactions.c.finished_at.is_(None)
            ).values(finished_at=now())).rowcount == 1

    def expired(self) -> list[Flow]:
        return self._where(transactions.c.expires_at < now())

    def for_client(self, client_id: str) -> list[Flow]:
        return self._where(transactions.c.client_id == client_id)

    def _where(self, condition: Any) -> list[Flow]:
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(transactions.c.id).where(condition)).all()]
        return [f for f in (self.find(i) for i in ids) if f is not None]

    def delete(self, flow_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(transactions).where(transactions.c.id == flow_id))

    def _update(self, flow_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(transactions).where(transactions.c.id == flow_id).values(**values))
