"""Writes survive upstream outages and restarts, and are applied exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.app import Gateway
from gateway.domain.desired import DesiredEvent, Invitee
from gateway.persistence.tables import events, managed_events
from gateway.secrets.local import LocalSecretStore
from gateway.services.accounts import PendingAccount
from gateway.sync.outbox import ClaimedWrite
from providers.memory.provider import WORLD
from tests.support import aio
from tests.support.stored_writes import store_as_old_release


@pytest.fixture
def account(gateway):
    name = f"out-{uuid.uuid4().hex[:8]}@example.com"
    upstream = WORLD.add_account(name, "pw")
    path = gateway.accounts.park_credentials(uuid.uuid4().hex, {"account": name, "password": "pw"})
    linked = gateway.accounts.link("cli_x", PendingAccount("memory", "memory", name, name, path),
                                   None, ["create_event", "delete_event", "read_events"])
    aio.run(gateway.worker.sync.sync_profile(linked.profile_id))
    with gateway.engine.connect() as conn:
        from gateway.persistence.tables import calendars

        calendar_id = conn.execute(select(calendars.c.id)).scalar_one()
    yield linked.subject, calendar_id, name, next(iter(upstream.calendars))
    WORLD.accounts.pop(name, None)


def desired(summary="Mentoring"):
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, second=0, minute=0)
    return DesiredEvent.from_stored({"summary": summary, "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(), "description": "notes"})


def upstream_events(name, calendar):
    return [e for evs in WORLD.accounts[name].calendars[calendar].resources.values() for e in evs]


def drain(gateway):
    async def go():
        for _ in range(5):
            for managed_id in await asyncio.to_thread(gateway.worker.outbox.due):
                await gateway.worker.outbox.apply(managed_id)
    aio.run(go())


def test_write_is_applied_upstream_and_mirrored(gateway, account):
    subject, calendar_id, name, upstream_cal = account
    managed_id, version = gateway.writes.upsert(subject, calendar_id, "evt-1", desired())
    assert not gateway.writes.applied(managed_id, version)
    drain(gateway)
    assert gateway.writes.applied(managed_id, version)
    (event,) = upstream_events(name, upstream_cal)
    assert event.summary == "Mentoring" and event.managed_key.startswith(f"cg1.{subject}.")
    with gateway.engine.connect() as conn:
        row = conn.execute(select(events).where(events.c.managed_key == event.managed_key)).one()
    assert not row.deleted  # read-your-writes: in the mirror before the next sync

    gateway.writes.upsert(subject, calendar_id, "evt-1", desired("Moved"))
    drain(gateway)
    assert [e.summary for e in upstream_events(name, upstream_cal)] == ["Moved"]
    gateway.writes.delete(subject, calendar_id, "evt-1")
    drain(gateway)
    assert upstream_events(name, upstream_cal) == []


def test_outage_delays_but_never_loses_a_write(gateway, account, settings, tmp_path):
    subject, calendar_id, name, upstream_cal = account
    WORLD.down = True
    try:
        managed_id, version = gateway.writes.upsert(subject, calendar_id, "evt-2", desired())
        drain(gateway)
        with gateway.engine.connect() as conn:
            row = conn.execute(select(managed_events)).one()
        assert row.attempts == 1 and "down" in row.last_error
        assert row.next_attempt_at.replace(tzinfo=UTC) > datetime.now(UTC)
    finally:
        WORLD.down = False
    # A restart: a new process (same database and secret store) finds the write due.
    gateway.close()
    with gateway.engine.begin() as conn:
        conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
    again = Gateway.build(settings, secrets=LocalSecretStore(tmp_path / "secrets"),
                          connectors=gateway.connectors)
    drain(again)
    drain(again)
    assert again.writes.applied(managed_id, version)
    assert [e.summary for e in upstream_events(name, upstream_cal)] == ["Mentoring"]
    again.close()


def test_read_only_calendar_refuses_the_write(gateway, account):
    from gateway.persistence.tables import calendars
    from gateway.services.writes import CalendarNotFound, CalendarReadOnly

    subject, calendar_id, _name, _cal = account
    with gateway.engine.begin() as conn:
        conn.execute(update(calendars).values(readonly=True))
    with pytest.raises(CalendarReadOnly):
        gateway.writes.upsert(subject, calendar_id, "x", desired())
    with pytest.raises(CalendarNotFound):
        gateway.writes.upsert("acc_someone_else", calendar_id, "x", desired())


def test_worker_sweep_runs_due_syncs_and_writes(gateway, account):
    subject, calendar_id, name, upstream_cal = account
    gateway.writes.upsert(subject, calendar_id, "evt-3", desired())

    async def once():
        await gateway.worker.broker.startup()
        sent = await gateway.worker.sweep()
        await gateway.worker.broker.wait_all()
        await gateway.worker.broker.shutdown()
        return sent

    assert aio.run(once()) >= 1
    assert [e.summary for e in upstream_events(name, upstream_cal)] == ["Mentoring"]


def test_a_row_stored_in_the_old_json_form_is_applied(gateway, account):
    """Rows sealed before the desired state was typed (dicts, some keys missing) still load."""
    subject, calendar_id, name, upstream_cal = account
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0, second=0, minute=0)
    old_form = {  # as the API of an older release sealed it: no "conferencing" key
        "summary": "Old form", "description": "kept", "location": "Room 4",
        "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "start_tzid": "Europe/London", "end_tzid": "Europe/London",
        "transparency": "transparent",
        "attendees": [{"email": "guest@example.com", "display_name": "Guest"}],
        "url": None, "private": False, "reminders": [10]}
    managed_id = store_as_old_release(gateway, subject, calendar_id, "evt-old", old_form)
    drain(gateway)
    assert gateway.writes.applied(managed_id, 1)
    (event,) = upstream_events(name, upstream_cal)
    assert (event.summary, event.description, event.location) == ("Old form", "kept", "Room 4")
    assert (event.start, event.end) == (start, start + timedelta(hours=1))
    assert event.start_tzid == "Europe/London" and event.transparency == "transparent"
    assert [(p.email, p.display_name) for p in event.attendees] == [
        ("guest@example.com", "Guest")]


def test_a_claimed_write_is_a_typed_value_with_its_desired_state(gateway, account):
    subject, calendar_id, _name, _upstream_cal = account
    wanted = desired("Typed claim")
    managed_id, version = gateway.writes.upsert(subject, calendar_id, "evt-typed", wanted)
    outbox = gateway.worker.outbox
    claimed = outbox.claim(managed_id)
    assert isinstance(claimed, ClaimedWrite)
    assert (claimed.id, claimed.version, claimed.calendar_id) == (managed_id, version,
                                                                   calendar_id)
    assert claimed.desired == wanted and claimed.unreadable is None
    draft = claimed.draft()
    assert draft is not None and (draft.summary, draft.start) == ("Typed claim", wanted.start)
    assert draft.managed_key == claimed.managed_key
    assert outbox.claim(managed_id) is None  # one worker at a time


def test_a_row_that_cannot_be_read_back_is_given_up_before_any_upstream_call(
        gateway, account):
    subject, calendar_id, name, upstream_cal = account
    managed_id = store_as_old_release(gateway, subject, calendar_id, "evt-poison", {
        "summary": "Poison", "start": "next tuesday", "end": "2030-01-02"})
    applied = aio.run(gateway.worker.outbox.apply(managed_id))
    assert not applied.ok and "cannot be written upstream (ValueError" in str(applied.error)
    assert gateway.writes.applied(managed_id, 1)  # given up: never retried
    assert upstream_events(name, upstream_cal) == []
    with gateway.engine.connect() as conn:
        row = conn.execute(select(managed_events).where(managed_events.c.id == managed_id)
                           ).one()
    assert row.last_error.startswith("the event cannot be written upstream")


def test_the_stored_form_is_unchanged_and_round_trips():
    """New rows are sealed in the same JSON form older releases read and wrote."""
    start = datetime(2030, 5, 1, 9, tzinfo=UTC)
    desired = DesiredEvent("Typed", start, start + timedelta(hours=1), description="d",
                           attendees=(Invitee("a@example.com"),), reminders=(5,),
                           conferencing=True)
    stored = desired.to_stored()
    assert stored == {
        "summary": "Typed", "description": "d", "location": "",
        "start": "2030-05-01T09:00:00+00:00", "end": "2030-05-01T10:00:00+00:00",
        "start_tzid": "Etc/UTC", "end_tzid": "Etc/UTC", "transparency": "opaque",
        "attendees": [{"email": "a@example.com", "display_name": None}],
        "url": None, "private": False, "reminders": [5], "conferencing": True}
    assert DesiredEvent.from_stored(stored) == desired
