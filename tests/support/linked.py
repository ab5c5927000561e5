"""Accounts linked straight to their own in-memory upstream account, for the API tests over
the mirror: ``link()`` gives a :class:`Linked` that can change its upstream, sync it through
the real sync engine and mint tokens with the real grant store.

Accounts are linked with ``gateway.accounts.link``: the test connector parks
``{"username", "password"}`` while the in-memory provider opens ``{"account", "password"}``,
so an account linked through the consent screen cannot sync.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.domain.sealing import DataKeys
from gateway.persistence.tables import calendars, profiles
from gateway.services.accounts import PendingAccount
from gateway.sync.engine import SyncEngine
from oauth_server.scopes import expand
from providers.memory.provider import WORLD
from providers.model import Event
from tests.support.oauth import REDIRECT, make_client


def run(coro):
    """``asyncio.run`` on a thread of its own: when the e2e tests share this process, a
    session-wide event loop (Playwright's) is already running on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class Linked:
    """One account linked to its own in-memory upstream account."""

    gateway: object
    client_id: str
    subject: str
    profile_id: str
    upstream: str  # the WORLD account name
    upstream_calendar: str
    client_secret: str | None = None  # the client app's (app-level calls: availability)

    def token(self, scope: str) -> dict[str, str]:
        store = self.gateway.oauth.store
        code = store.save_code(client_id=self.client_id, redirect_uri=REDIRECT, scope=scope,
                               subject=self.subject, linking_profile=None, code_challenge=None)
        issued = store.redeem_code(store.find_code(code, self.client_id))
        return {"Authorization": f"Bearer {issued.access_token}"}

    def put(self, uid: str, start, end=None, **fields) -> None:
        end = end or start + timedelta(hours=1)
        WORLD.put(self.upstream, self.upstream_calendar, uid, [Event(
            resource_id=uid, instance_id=uid, start=start, end=end,
            **({"summary": f"Event {uid}", "description": "secret agenda"} | fields))])

    def sync(self) -> None:
        engine = SyncEngine(self.gateway.engine, self.gateway.secrets,
                            DataKeys(self.gateway.engine, self.gateway.secrets))
        outcome = run(engine.sync_profile(self.profile_id))
        assert outcome.ran and outcome.error is None, outcome

    @property
    def calendar_id(self) -> str:
        with self.gateway.engine.connect() as conn:
            return conn.execute(select(calendars.c.id).join(
                profiles, profiles.c.id == calendars.c.profile_id).where(
                profiles.c.account_id == self.subject)).scalars().first()


@pytest.fixture
def link(gateway):
    client = make_client(gateway)
    names: list[str] = []

    def make(scope: str = "read_write") -> Linked:
        name = f"reads-{uuid.uuid4().hex[:8]}@example.com"
        names.append(name)
        upstream = WORLD.add_account(name, "pw")
        path = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                                 {"account": name, "password": "pw"})
        linked = gateway.accounts.link(client.client_id, PendingAccount(
            "memory", "memory", name, name, path), None, sorted(expand(scope.split())))
        return Linked(gateway, client.client_id, linked.subject, linked.profile_id, name,
                      next(iter(upstream.calendars)), client.secret)

    yield make
    for name in names:
        WORLD.accounts.pop(name, None)


def hour(hours: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)


def busy_pair(link, a_busy: tuple[int, int], b_busy: tuple[int, int]
              ) -> tuple[Linked, Linked]:
    """Two members of one app, each with one event upstream ("a1", "b1") over the given
    ``(start, end)`` hours from :func:`hour`, both synced into the mirror."""
    a, b = link(), link()
    a.put("a1", hour(a_busy[0]), hour(a_busy[1]))
    b.put("b1", hour(b_busy[0]), hour(b_busy[1]))
    a.sync()
    b.sync()
    return a, b


def get(http, path, headers, **params):
    return http.get(path, params={"tzid": "Etc/UTC"} | params, headers=headers)
