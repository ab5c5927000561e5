"""POST /webhooks/google: only a push naming one of our channels with its token counts; it
makes the profile due for sync at once (and says so even to a sync already running)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from gateway.persistence.tables import profiles, push_channels
from gateway.services.push import digest
from tests.support.linked import hour


@pytest.fixture
def settings(settings):
    return settings.replace(worker_mode="external")


@pytest.fixture
def channel(gateway, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    later = datetime.now(UTC) + timedelta(hours=1)
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == account.profile_id)
                     .values(next_sync_at=later))
        conn.execute(insert(push_channels).values(
            id="ch_test", profile_id=account.profile_id, calendar_id=account.calendar_id,
            provider_name="google", resource_id="res-1", token_hash=digest("s3cret"),
            expires_at=later, created_at=datetime.now(UTC), messages=0))
    return account


def push(http, token="s3cret", channel="ch_test", resource="res-1", state="exists"):
    return http.post("/webhooks/google", headers={
        "X-Goog-Channel-ID": channel, "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": resource, "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": "2"})


def due(gateway, profile_id):
    with gateway.engine.connect() as conn:
        return conn.execute(select(profiles.c.next_sync_at, profiles.c.sync_requested_at)
                            .where(profiles.c.id == profile_id)).one()


def test_a_push_makes_the_profile_due_now(http, gateway, channel):
    before = datetime.now(UTC)
    r = push(http)
    assert r.status_code == 200
    row = due(gateway, channel.profile_id)
    next_sync = row.next_sync_at.replace(tzinfo=UTC) if row.next_sync_at.tzinfo is None \
        else row.next_sync_at
    assert next_sync <= datetime.now(UTC) and next_sync >= before - timedelta(seconds=1)
    assert row.sync_requested_at is not None
    assert channel.profile_id in gateway.worker.sync.due_profiles()


@pytest.mark.parametrize("change", [{"token": "wrong"}, {"channel": "ch_other"},
                                    {"resource": "res-2"}, {"token": ""}])
def test_a_push_that_is_not_ours_is_refused_and_changes_nothing(http, gateway, channel,
                                                                change):
    r = push(http, **change)
    assert r.status_code == 404
    assert due(gateway, channel.profile_id).sync_requested_at is None
    assert channel.profile_id not in gateway.worker.sync.due_profiles()


def test_the_opening_sync_message_is_acknowledged_without_a_sync(http, gateway, channel):
    assert push(http, state="sync").status_code == 200
    assert due(gateway, channel.profile_id).sync_requested_at is None
