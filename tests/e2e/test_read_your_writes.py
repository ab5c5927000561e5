"""Read your own writes with the unmodified pycronofy SDK against a real Calgate server and
a real Radicale account: while no worker runs, an upsert, a delete and a backfill of 105
events (batches of 50) show in the very next read; once a worker has applied them, the
events keep the ``event_uid`` they had when they were accepted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest
from pycronofy.batch import BatchBuilder

from tests.e2e.test_batch_backfill import link_over_http, sdk_client, wait_for
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer
from tests.support.processes import stop_process

SCOPE = "read_account list_calendars read_events create_event delete_event"
ENV = {"CALGATE_WORKER_MODE": "external", "CALGATE_SHUTDOWN_GRACE": "1"}
BACKFILL = 105


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A server that does no background work itself: only the workers a test starts."""
    with GatewayServer(tmp_path_factory.mktemp("calgate-ryow"), env=ENV) as running:
        yield running


@pytest.fixture
def radicale() -> Iterator[tuple[RadicaleServer, str]]:
    with RadicaleServer(users={"alice": "wonderland"}) as dav:
        owner = DavOwner(dav.url, "alice", "wonderland")
        path = owner.make_calendar("Bookings")
        yield dav, path
        owner.close()


def managed(client: pycronofy.Client, **flags: Any) -> dict[str, dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=1)
    mine = [e for e in client.read_events(from_date=start, to_date=start + timedelta(days=30),
                                          include_managed=True, **flags) if "event_id" in e]
    by_id = {e["event_id"]: e for e in mine}
    assert len(by_id) == len(mine), "an event shows twice"  # e.g. once per upstream id
    return by_id


def test_writes_show_in_the_next_read_and_keep_their_event_uid(
        server: GatewayServer, callback: CallbackServer, radicale: Any) -> None:
    dav, _path = radicale
    app = server.register_client(name="RYOW App", redirect_uris=[callback.url],
                                 scopes=SCOPE.split(), legacy_no_pkce=True)
    client = sdk_client(server, app)
    got = link_over_http(client, server, callback, dav.url)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    worker: subprocess.Popen[bytes] | None = server.spawn_worker("first-sync")
    try:  # the first sync brings the calendars in; then no worker runs
        wait_for(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
            "profile_initial_sync_required"], 30, "the initial sync")
    finally:
        stop_process(worker)
    (calendar,) = [c for c in client.list_calendars() if c["calendar_name"] == "Bookings"]
    calendar_id = calendar["calendar_id"]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)

    client.upsert_event(calendar_id, {"event_id": "one", "summary": "Intro call",
                                      "start": start, "end": start + timedelta(minutes=30)})
    seen = managed(client)["one"]  # at once: no worker has run
    assert seen["summary"] == "Intro call" and seen["calgate_write"] == {"status": "pending"}

    for first in range(0, BACKFILL, 50):
        builder = BatchBuilder()
        for n in range(first, min(first + 50, BACKFILL)):
            at = start + timedelta(hours=n + 1)
            builder.upsert_event(calendar_id, {"event_id": f"fill-{n:03d}",
                                               "summary": f"Fill {n}", "start": at,
                                               "end": at + timedelta(minutes=30)})
        client.batch(builder)
    pending = managed(client)
    assert len(pending) == BACKFILL + 1
    assert {e["calgate_write"]["status"] for e in pending.values()} == {"pending"}
    uids = {event_id: e["event_uid"] for event_id, e in pending.items()}
    assert len(set(uids.values())) == BACKFILL + 1

    worker = server.spawn_worker("apply")
    try:
        applied = wait_for(lambda: (events := managed(client)) and not any(
            "calgate_write" in e for e in events.values()) and events, 90,
            "the worker to apply every write")
        assert {event_id: e["event_uid"] for event_id, e in applied.items()} == uids
        stop_process(worker)
        worker = None

        client.delete_event(calendar_id, "one")
        assert "one" not in managed(client)  # at once
        gone = managed(client, include_deleted=True)["one"]
        assert gone["deleted"] is True and gone["event_uid"] == uids["one"]

        worker = server.spawn_worker("delete")
        wait_for(lambda: "calgate_write" not in managed(client, include_deleted=True)["one"],
                 30, "the delete to be applied")
        after = managed(client, include_deleted=True)
        assert after["one"]["deleted"] is True
        assert {k: e["event_uid"] for k, e in after.items()} == uids
    finally:
        stop_process(worker)
