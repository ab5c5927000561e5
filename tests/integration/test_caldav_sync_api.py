"""Issue 3 against a real Radicale through the whole gateway: upstream edits and cancellations
reach GET /v1/events?last_modified=…, and an accepted write survives a server outage."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.services.accounts import PendingAccount
from tests.support import aio
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.oauth import make_client
from tests.support.outbound import LOOPBACK_NETWORKS

SCOPE = ["read_events", "read_free_busy", "list_calendars", "create_event", "delete_event"]


@pytest.fixture
def radicale():
    with RadicaleServer(users={"alice": "wonderland"}) as server:
        owner = DavOwner(server.url, "alice", "wonderland")
        yield server, owner, owner.make_calendar("Work")
        owner.close()


def bearer_for(http, gateway, subject: str, scope: str) -> dict[str, str]:
    """Tokens for an account linked outside the consent screen (minted through the store)."""
    client = make_client(gateway)
    code = gateway.oauth.store.save_code(client_id=client.client_id,
                                         redirect_uri=client.redirect_uri, scope=scope,
                                         subject=subject, linking_profile=None,
                                         code_challenge=None)
    record = gateway.oauth.store.find_code(code, client.client_id)
    issued = gateway.oauth.store.redeem_code(record)
    return {"Authorization": f"Bearer {issued.access_token}"}


@pytest.fixture
def settings(settings):
    # Radicale listens on loopback
    return settings.replace(outbound_allow_networks=LOOPBACK_NETWORKS)


@pytest.fixture
def linked(gateway, radicale):
    server, owner, path = radicale
    credentials = {"server_url": server.url, "username": "alice", "password": "wonderland"}
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
    profile = gateway.accounts.link("cli_x", PendingAccount(
        "caldav", "caldav", "alice", f"{server.url}|alice", parked), None, SCOPE)
    return profile, server, owner, path


def sync(gateway, profile_id: str) -> None:
    from sqlalchemy import update

    from gateway.persistence.tables import profiles

    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(gateway.worker.sync.sync_profile(profile_id))
    assert outcome.ran and outcome.error is None, outcome


def when(days: int, hour: int) -> datetime:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return base.replace(hour=hour)


def test_upstream_edits_and_cancellations_reach_last_modified(http, gateway, linked):
    profile, _server, owner, path = linked
    owner.add(path, "standup", "Standup", when(2, 9))
    owner.add(path, "retro", "Retro", when(3, 15))
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, " ".join(SCOPE))
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0]["calendar_id"]
    time.sleep(1.1)  # last_modified has second precision
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    owner.rename(path, "standup", "Standup (moved to Zoom)")
    owner.remove(path, "retro")
    sync(gateway, profile.profile_id)
    r = http.get("/v1/events", headers=headers, params={
        "tzid": "Europe/Berlin", "last_modified": since, "include_deleted": "true",
        "calendar_ids[]": calendar_id})
    assert r.status_code == 200, r.text
    changed = {e["summary"] if not e["deleted"] else "cancelled": e for e in r.json()["events"]}
    assert set(changed) == {"Standup (moved to Zoom)", "cancelled"}
    assert changed["cancelled"]["deleted"] is True
    assert "summary" not in changed["cancelled"]  # a tombstone keeps no text


def test_an_accepted_write_survives_an_outage_and_lands_exactly_once(http, gateway, linked):
    profile, server, owner, path = linked
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, " ".join(SCOPE))
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0]["calendar_id"]
    start = when(4, 10)
    server.outage()
    try:
        r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
            "event_id": "booking-42", "summary": "Intro call",
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
        assert r.status_code == 202 and r.content == b""
        outbox = gateway.worker.outbox
        for managed_id in outbox.due():
            assert not aio.run(outbox.apply(managed_id)).ok  # the server is down
    finally:
        server.recover()
    from sqlalchemy import update

    from gateway.persistence.tables import managed_events

    with gateway.engine.begin() as conn:  # skip the backoff
        conn.execute(update(managed_events).values(next_attempt_at=datetime.now(UTC)))
    for _ in range(2):  # a retry after success finds nothing left to do
        for managed_id in gateway.worker.outbox.due():
            assert aio.run(gateway.worker.outbox.apply(managed_id)).ok
    found = [e for e in owner.calendar(path).events() if "Intro call" in str(e.data)]
    assert len(found) == 1
