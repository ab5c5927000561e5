"""The worker sleeps until the next thing falls due (a poll, a retry), not a whole tick,
so a profile polled every 30 s is synced at its time, not up to a tick later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gateway.persistence.tables import external_writes, participation_writes, profiles
from tests.support.aio import run
from tests.support.waiting import Deadline, scaled


@pytest.fixture
def settings(settings):
    return settings.replace(worker_tick=5.0)


def set_profile(gateway, profile_id: str, **values) -> None:
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == profile_id).values(**values))


def test_the_pause_ends_when_the_next_poll_is_due(gateway, link):
    worker = gateway.worker
    linked = link()
    linked.sync()
    set_profile(gateway, linked.profile_id,
                next_sync_at=datetime.now(UTC) + timedelta(seconds=60))
    assert run(worker._pause()) == 5.0  # nothing due before the tick
    set_profile(gateway, linked.profile_id,
                next_sync_at=datetime.now(UTC) + timedelta(seconds=1.5))
    assert 1.0 < run(worker._pause()) <= 1.5
    # Due now, but a worker is syncing it: that is no reason to sweep again at once.
    set_profile(gateway, linked.profile_id, next_sync_at=datetime.now(UTC),
                sync_lease_until=datetime.now(UTC) + timedelta(seconds=60))
    assert run(worker._pause()) == 5.0
    set_profile(gateway, linked.profile_id, sync_lease_until=None)
    assert run(worker._pause()) == 0.25  # overdue: the shortest pause


@pytest.mark.parametrize("table", [external_writes, participation_writes],
                         ids=["external_write", "answer"])
def test_the_pause_ends_when_a_retry_is_due(gateway, link, table):
    """A write to an event the app did not create (or an answer to an invitation) waiting
    for its retry: the worker sweeps at the retry's time, not a tick later."""
    worker = gateway.worker
    linked = link()
    linked.sync()
    set_profile(gateway, linked.profile_id,
                next_sync_at=datetime.now(UTC) + timedelta(seconds=60))
    now = datetime.now(UTC)
    values = ({"resource_id": "ext-1", "patch": None} if table is external_writes
              else {"status": "accepted"})
    with gateway.engine.begin() as conn:
        conn.execute(table.insert().values(
            account_id=linked.subject, calendar_id=linked.calendar_id, event_uid="evt_1",
            version=1, applied_version=0, attempts=1, last_error="upstream unavailable",
            next_attempt_at=now + timedelta(seconds=3), updated_at=now, **values))
    assert run(worker._pause()) <= 3.0  # by the retry's time, not the 5 s tick
    with gateway.engine.begin() as conn:  # applied: nothing waits any more
        conn.execute(update(table).values(applied_version=1))
    assert run(worker._pause()) == 5.0


def test_a_published_wake_up_reaches_a_listening_worker(gateway, db_url):
    """PostgreSQL: the API's NOTIFY reaches every ``calgate worker`` at once. SQLite has
    one process, so there is nothing to publish."""
    import threading
    import time

    from gateway.persistence.wakeups import Wakeups

    wakeups = Wakeups(gateway.engine)
    assert wakeups.enabled == db_url.startswith("postgresql")
    if not wakeups.enabled:
        wakeups.publish()  # a no-op, no error
        return
    woken: list[float] = []
    stop = threading.Event()
    listener = threading.Thread(target=wakeups.listen, args=(lambda: woken.append(
        time.monotonic()), stop), daemon=True)
    listener.start()
    deadline = Deadline(5)
    while not woken and not deadline.passed():  # it wakes once when it starts
        time.sleep(0.02)
    assert woken, "the listener started"
    before = len(woken)
    sent = time.monotonic()
    wakeups.publish()
    while len(woken) == before and time.monotonic() < sent + scaled(5):
        time.sleep(0.01)
    stop.set()
    listener.join(5)
    assert len(woken) > before and woken[-1] - sent < scaled(1.0)
    assert not listener.is_alive()


def test_a_running_sync_keeps_its_lease_however_long_it_takes(gateway, link):
    """The lease is renewed while the sync runs, so a second worker never starts a second
    sync of the same profile; a dead worker's lease runs out after one lease period."""
    import asyncio

    from sqlalchemy import select

    from gateway.sync.engine import SyncEngine, SyncSettings

    linked = link()
    lease = scaled(0.6)  # a busy machine renews later: the lease stretches with it
    engine = SyncEngine(gateway.engine, gateway.secrets, gateway.writes.keys,
                        SyncSettings(lease=lease))
    assert engine._lease(linked.profile_id, datetime.now(UTC))

    def lease_left() -> float:
        with gateway.engine.connect() as conn:
            until = conn.execute(select(profiles.c.sync_lease_until).where(
                profiles.c.id == linked.profile_id)).scalar_one()
        return (until.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()

    async def for_a_while() -> list[float]:
        beat = asyncio.get_running_loop().create_task(engine._keep_lease(linked.profile_id))
        seen = []
        for _ in range(6):  # two and a half lease periods
            await asyncio.sleep(lease / 2.4)
            seen.append(lease_left())
        beat.cancel()
        return seen

    assert all(left > 0 for left in run(for_a_while()))
    assert not engine._lease(linked.profile_id, datetime.now(UTC))  # still held…
    import time
    time.sleep(lease + 0.1)
    assert engine._lease(linked.profile_id, datetime.now(UTC))  # …until it runs out
