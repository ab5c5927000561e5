"""The sync engine against the in-memory reference provider, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.domain.mirror import managed_prefix
from gateway.domain.sealing import DataKeys, unseal
from gateway.persistence.tables import calendars, events, profiles
from gateway.services.accounts import PendingAccount
from gateway.sync.engine import SyncEngine, SyncSettings
from providers.memory.provider import WORLD, MemoryCalendar
from providers.model import Event
from tests.support import aio


@pytest.fixture
def linked(gateway):
    """A profile linked to a fresh in-memory upstream account."""
    import uuid

    name = f"sync-{uuid.uuid4().hex[:8]}@example.com"
    account = WORLD.add_account(name, "pw")
    calendar = next(iter(account.calendars))

    def link(scope: str = "read_events list_calendars"):
        path = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                                 {"account": name, "password": "pw"})
        return gateway.accounts.link("cli_x", PendingAccount(
            "memory", "memory", name, name, path), None, scope.split())

    yield name, calendar, link
    WORLD.accounts.pop(name, None)


def soon(hours: int = 24) -> datetime:
    return datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(hours=hours)


def put(name, calendar, uid, summary, start, managed_key=None, transparency="opaque"):
    WORLD.put(name, calendar, uid, [Event(
        resource_id=uid, instance_id=uid, start=start, end=start + timedelta(hours=1),
        summary=summary, description="secret agenda", managed_key=managed_key,
        transparency=transparency)])


def engine_for(gateway) -> SyncEngine:
    return SyncEngine(gateway.engine, gateway.secrets, DataKeys(gateway.engine, gateway.secrets))


def rows(gateway, **where):
    query = select(events)
    for column, value in where.items():
        query = query.where(events.c[column] == value)
    with gateway.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


def test_initial_then_incremental_sync(gateway, linked):
    name, calendar, link = linked
    put(name, calendar, "a", "Planning", soon())
    put(name, calendar, "b", "Review", soon(48))
    profile = link()
    sync = engine_for(gateway)
    assert sync.due_profiles() == [profile.profile_id]
    outcome = aio.run(sync.sync_profile(profile.profile_id))
    assert outcome.ran and outcome.changed == 2 and outcome.error is None
    with gateway.engine.connect() as conn:
        p = conn.execute(select(profiles).where(profiles.c.id == profile.profile_id)).one()
        cal = conn.execute(select(calendars)).one()
    assert p.initial_sync_required is False and p.next_sync_at is not None
    assert cal.cursor is not None
    # The text is sealed with the account's data key, and readable with it.
    row = rows(gateway, resource_id="a")[0]
    assert b"Planning" not in row["sealed"]
    key = DataKeys(gateway.engine, gateway.secrets).key(profile.subject)
    assert unseal(key, row["sealed"], f"{cal.id}|a")["summary"] == "Planning"

    before = rows(gateway, resource_id="b")[0]["updated"]
    WORLD.put(name, calendar, "a", [e for e in WORLD.accounts[name].calendars[calendar]
                                    .resources["a"]])  # touched, but not changed
    WORLD.remove(name, calendar, "b")
    put(name, calendar, "c", "New", soon(72))
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(sync.sync_profile(profile.profile_id))
    assert outcome.changed == 2  # c inserted, b tombstoned; a unchanged
    b = rows(gateway, resource_id="b")[0]
    assert b["deleted"] and b["sealed"] is None and b["updated"] > before


def test_free_busy_only_grant_keeps_no_text(gateway, linked):
    name, calendar, link = linked
    put(name, calendar, "a", "Therapy", soon())
    profile = link("read_free_busy")
    aio.run(engine_for(gateway).sync_profile(profile.profile_id))
    (row,) = rows(gateway, resource_id="a")
    assert row["sealed"] is None and row["transparency"] == "opaque"


def test_managed_only_grant_keeps_only_the_apps_own_events(gateway, linked):
    name, calendar, link = linked
    profile = link("create_event delete_event")
    put(name, calendar, "theirs", "Private life", soon())
    put(name, calendar, "mine", "Session", soon(30),
        managed_key=managed_prefix(profile.subject) + "k1")
    put(name, calendar, "other-app", "Other", soon(40), managed_key="cg1.acc_other.k1")
    aio.run(engine_for(gateway).sync_profile(profile.profile_id))
    assert [r["resource_id"] for r in rows(gateway)] == ["mine"]


def test_rejected_credentials_disconnect_the_profile(gateway, linked):
    name, _calendar, link = linked
    profile = link()
    WORLD.accounts[name].password = "changed upstream"
    outcome = aio.run(engine_for(gateway).sync_profile(profile.profile_id))
    assert outcome.error
    with gateway.engine.connect() as conn:
        p = conn.execute(select(profiles).where(profiles.c.id == profile.profile_id)).one()
    assert p.connected is False and p.sync_lease_until is None


def test_upstream_outage_backs_off_and_recovers(gateway, linked):
    name, calendar, link = linked
    put(name, calendar, "a", "Planning", soon())
    profile = link()
    sync = engine_for(gateway)
    WORLD.down = True
    try:
        outcome = aio.run(sync.sync_profile(profile.profile_id))
    finally:
        WORLD.down = False
    assert outcome.error and rows(gateway) == []
    with gateway.engine.connect() as conn:
        p = conn.execute(select(profiles).where(profiles.c.id == profile.profile_id)).one()
    assert p.sync_failures == 1 and p.connected
    assert p.next_sync_at.replace(tzinfo=UTC) > datetime.now(UTC)
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    assert aio.run(sync.sync_profile(profile.profile_id)).changed == 1


def test_one_sync_per_profile_at_a_time(gateway, linked):
    _name, _calendar, link = linked
    profile = link()
    sync = engine_for(gateway)

    async def both():
        return await asyncio.gather(sync.sync_profile(profile.profile_id),
                                    sync.sync_profile(profile.profile_id))

    outcomes = aio.run(both())
    assert sorted(o.ran for o in outcomes) == [False, True]


def test_revoked_account_leaves_no_event_rows_or_key(gateway, linked):
    name, calendar, link = linked
    put(name, calendar, "a", "Planning", soon())
    profile = link()
    aio.run(engine_for(gateway).sync_profile(profile.profile_id))
    assert rows(gateway)
    gateway.accounts.revoke_subject(profile.subject)
    assert rows(gateway) == []
    assert DataKeys(gateway.engine, gateway.secrets).key(profile.subject) is None


# -- the calendar list's own cadence ----------------------------------------------------


@pytest.fixture
def listings(monkeypatch):
    """How many times a provider read its calendar list."""
    from providers.memory.provider import MemoryProvider

    counted = {"n": 0}
    original = MemoryProvider.list_calendars

    async def counting(self):
        counted["n"] += 1
        return await original(self)

    monkeypatch.setattr(MemoryProvider, "list_calendars", counting)
    return counted


def cadence_engine(gateway, list_interval: float) -> SyncEngine:
    return SyncEngine(gateway.engine, gateway.secrets, DataKeys(gateway.engine, gateway.secrets),
                      SyncSettings(calendar_list_interval=list_interval))


def resync(sync: SyncEngine, profile_id: str):
    with sync.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    return aio.run(sync.sync_profile(profile_id))


def live_calendars(gateway) -> set[str]:
    with gateway.engine.connect() as conn:
        return {r.name for r in conn.execute(select(calendars).where(
            calendars.c.deleted.is_(False))).all()}


def test_the_calendar_list_is_read_on_its_own_cadence(gateway, linked, listings):
    name, calendar, link = linked
    put(name, calendar, "a", "Planning", soon())
    profile = link()
    sync = cadence_engine(gateway, 3600)
    assert resync(sync, profile.profile_id).changed == 1 and listings["n"] == 1  # first sync
    from providers.model import Calendar

    WORLD.accounts[name].calendars[f"{name}/2"] = MemoryCalendar(Calendar(f"{name}/2", "Later"))
    put(name, calendar, "b", "Review", soon(30))
    put(name, f"{name}/2", "c", "Elsewhere", soon(40))
    # Within the interval: the known calendar's changes, no listing.
    assert resync(sync, profile.profile_id).changed == 1 and listings["n"] == 1
    assert live_calendars(gateway) == {"Calendar"}
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(
            calendars_listed_at=datetime.now(UTC) - timedelta(seconds=3601)))
    assert resync(sync, profile.profile_id).changed == 1 and listings["n"] == 2
    assert live_calendars(gateway) == {"Calendar", "Later"}
    assert {r["resource_id"] for r in rows(gateway)} == {"a", "b", "c"}
    # Interval 0: listed on every sync.
    every = cadence_engine(gateway, 0)
    resync(every, profile.profile_id)
    resync(every, profile.profile_id)
    assert listings["n"] == 4


def test_a_calendar_gone_upstream_is_listed_again_at_once(gateway, linked, listings):
    name, calendar, link = linked
    from providers.model import Calendar

    WORLD.accounts[name].calendars[f"{name}/2"] = MemoryCalendar(Calendar(f"{name}/2", "Later"))
    put(name, f"{name}/2", "x", "Doomed", soon())
    profile = link()
    sync = cadence_engine(gateway, 3600)
    resync(sync, profile.profile_id)
    assert live_calendars(gateway) == {"Calendar", "Later"} and listings["n"] == 1
    del WORLD.accounts[name].calendars[f"{name}/2"]
    put(name, calendar, "a", "Planning", soon(30))
    outcome = resync(sync, profile.profile_id)
    assert outcome.error is None and outcome.changed == 1 and listings["n"] == 2
    assert live_calendars(gateway) == {"Calendar"}


def test_a_failed_sync_lists_the_calendars_again(gateway, linked, listings):
    _name, _calendar, link = linked
    profile = link()
    sync = cadence_engine(gateway, 3600)
    resync(sync, profile.profile_id)
    WORLD.down = True
    try:
        assert resync(sync, profile.profile_id).error
    finally:
        WORLD.down = False
    before = listings["n"]
    assert resync(sync, profile.profile_id).error is None
    assert listings["n"] == before + 1
