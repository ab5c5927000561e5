"""Issue 5's journeys with every part real: a Calgate API process and separate
``calgate worker`` processes on PostgreSQL, a Radicale account, the unmodified pycronofy SDK
as the client app, and the app's webhook receiver on loopback checking both signatures.

- An upstream edit and an upstream cancellation of the app's own event reach the receiver,
  and the follow-up ``last_modified`` read shows them.
- The receiver answers 500 for two minutes, then recovers: every notification arrives, in
  order per channel, and the delivery log shows the failed attempts.
- Two workers plus one killed with SIGKILL in the middle of deliveries and of a sync:
  no notification is lost (counted), and only the ones in flight arrive twice.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pycronofy
import pytest
from sqlalchemy import func, select

from gateway.persistence.tables import events, notifications, profiles
from gateway.services.accounts import PendingAccount
from tests.support.davservers import DavOwner, RadicaleServer, single_event, vcalendar
from tests.support.db import postgres_database
from tests.support.e2e_app import build_gateway
from tests.support.e2e_server import GatewayServer
from tests.support.processes import free_port, stop_process
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

SCOPE = "read_account list_calendars read_events read_free_busy create_event delete_event"
CALENDAR = "alice/work"
ENV = {
    "CALGATE_WORKER_MODE": "external",  # only `calgate worker` processes do the work
    "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1",  # the receiver: plain http on loopback,
    "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",  # allowed as an operator would
    "CALGATE_NOTIFY_TIMEOUT": "2",  # a claim outlives a dead worker by 2 x 2 + 10 s
    "CALGATE_NOTIFY_MAX_BACKOFF": "8",
    "CALGATE_SYNC_LEASE": "10",
    "CALGATE_SYNC_INTERVAL": "1",
    "CALGATE_WORKER_TICK": "0.3",
    "CALGATE_SHUTDOWN_GRACE": "1",
}


def radicale_with(count: int) -> RadicaleServer:
    """Radicale with alice's calendar "Work" holding ``count`` events already."""
    day0 = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    items = [(f"seed-{i}.ics", vcalendar(single_event(
        f"seed-{i}", f"Seed {i}", day0 + timedelta(days=1 + i % 90, hours=i % 9),
        timedelta(minutes=30)))) for i in range(count)]
    props = {"tag": "VCALENDAR", "C:supported-calendar-component-set": "VEVENT",
             "D:displayname": "Work"}
    return RadicaleServer(users={"alice": "wonderland"}, collections={CALENDAR: props},
                          items={CALENDAR: items})


class Deployment:
    """The API process, worker processes, the in-process view of the same state, and the
    client app (its pycronofy client and its receiver)."""

    def __init__(self, workdir: Path, database_url: str, radicale: RadicaleServer,
                 env: dict[str, str] | None = None) -> None:
        self.server = GatewayServer(workdir, database_url, env=ENV | (env or {})).start()
        self.radicale = radicale
        self.gateway = build_gateway(self.server.settings())
        self.workers: dict[str, Any] = {}
        client, secret = self.gateway.oauth.registry.create(
            name="Mentor Hub", redirect_uris=["https://app.example/cb"],
            scopes=SCOPE.split())
        assert secret is not None
        self.client_id, self.secret = client.client_id, secret
        parked = self.gateway.accounts.park_credentials(uuid.uuid4().hex, {
            "server_url": radicale.url, "username": "alice", "password": "wonderland"})
        linked = self.gateway.accounts.link(client.client_id, PendingAccount(
            "caldav", "caldav", "alice", f"{radicale.url}|alice", parked), None, SCOPE.split())
        self.subject, self.profile_id = linked.subject, linked.profile_id
        store = self.gateway.oauth.store
        code = store.save_code(client_id=self.client_id, redirect_uri="https://app.example/cb",
                               scope=SCOPE, subject=self.subject, linking_profile=None,
                               code_challenge=None)
        issued = store.redeem_code(store.find_code(code, self.client_id))
        self.sdk = pycronofy.Client(client_id=self.client_id, client_secret=self.secret,
                                    access_token=issued.access_token)
        self.sdk.request_handler.base_url = self.server.url
        self.receiver = Receiver(self.client_id, self.secret).start()
        self.owner = DavOwner(radicale.url, "alice", "wonderland")

    def start_worker(self, name: str, ready: bool = False) -> None:
        """``ready``: return once the worker serves its metrics (it has started)."""
        port = free_port() if ready else 0
        self.workers[name] = self.server.spawn_worker(
            name, {"CALGATE_WORKER_METRICS_PORT": str(port)})
        if ready:
            def up() -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=1) as resp:
                        return resp.status == 200
                except OSError:
                    return False
            eventually(up, timeout=60, interval=0.1)

    def terminate_worker(self, name: str) -> int:
        """SIGTERM (what Kubernetes sends): the worker drains and exits; its exit code."""
        proc = self.workers.pop(name)
        os.kill(proc.pid, signal.SIGTERM)
        return int(proc.wait(30))

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        self.receiver.stop()
        for proc in self.workers.values():
            stop_process(proc)
        self.owner.close()
        self.gateway.close()
        self.server.stop()

    def scalar(self, query: Any) -> Any:
        with self.gateway.engine.connect() as conn:
            return conn.execute(query).scalar()

    def undelivered(self) -> int:
        return int(self.scalar(select(func.count()).select_from(notifications).where(
            notifications.c.delivered_at.is_(None))))

    def all_notifications(self) -> list[Any]:
        with self.gateway.engine.connect() as conn:
            return list(conn.execute(select(notifications).order_by(notifications.c.id)))

    def mirrored(self) -> int:
        return int(self.scalar(select(func.count()).select_from(events).where(
            events.c.deleted.is_(False))))

    def managed_uid(self) -> str:
        """The UID of the app's event in Radicale (written by Calgate's outbox)."""
        for item in self.owner.calendar(f"/{CALENDAR}/").events():
            component = item.icalendar_component
            if any(str(k).upper().startswith("X-CALGATE") for k in component):
                return str(component["UID"])
        raise AssertionError("the app's event is not in Radicale")


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Any]:
    made: list[Deployment] = []
    stack: list[Any] = []

    def make(seed_events: int = 0, env: dict[str, str] | None = None) -> Deployment:
        database = postgres_database()
        url = database.__enter__()
        stack.append(database)
        radicale = radicale_with(seed_events).start()
        stack.append(radicale)
        deployment = Deployment(tmp_path / f"d{len(made)}", url, radicale, env)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
    for thing in reversed(stack):
        if isinstance(thing, RadicaleServer):
            thing.stop()
        else:
            thing.__exit__(None, None, None)


def read_since(d: Deployment, since: str) -> list[dict[str, Any]]:
    return list(d.sdk.read_events(last_modified=since, include_deleted=True,
                                  include_managed=True, tzid="Etc/UTC"))


def test_upstream_edit_and_cancellation_of_the_apps_event_reach_the_receiver(deploy):
    d = deploy()
    d.start_worker("a")
    eventually(lambda: d.scalar(select(profiles.c.initial_sync_required).where(
        profiles.c.id == d.profile_id)) is False, timeout=30)
    channel = d.sdk.create_notification_channel(d.receiver.url)
    assert channel["channel_id"].startswith("chn_") and channel["filters"] == {}
    eventually(lambda: d.receiver.of_type("verification"), timeout=20)

    calendar_id = d.sdk.list_calendars()[0]["calendar_id"]
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)
    d.sdk.upsert_event(calendar_id, {
        "event_id": "mentoring-42", "summary": "Mentoring", "tzid": "Etc/UTC",
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    # The app's own write, once applied upstream, is a change too.
    eventually(lambda: d.receiver.of_type("change"), timeout=30)

    def change_after(count: int) -> dict[str, Any]:
        eventually(lambda: len(d.receiver.of_type("change")) > count, timeout=30)
        return d.receiver.of_type("change")[-1].notification

    uid = d.managed_uid()
    seen = len(d.receiver.of_type("change"))
    d.owner.rename(f"/{CALENDAR}/", uid, "Mentoring (moved to the library)")
    note = change_after(seen)
    edited = [e for e in read_since(d, note["changes_since"])
              if e.get("event_id") == "mentoring-42"]
    assert [e["summary"] for e in edited] == ["Mentoring (moved to the library)"]

    seen = len(d.receiver.of_type("change"))
    d.owner.remove(f"/{CALENDAR}/", uid)
    note = change_after(seen)
    cancelled = [e for e in read_since(d, note["changes_since"])
                 if e.get("event_id") == "mentoring-42"]
    assert [e.get("deleted") for e in cancelled] == [True]

    everything = d.receiver.delivered()
    assert everything and all(r.cronofy_valid and r.calgate_valid for r in everything)
    assert {r.json["channel"]["channel_id"] for r in everything} == {channel["channel_id"]}


def test_a_receiver_down_for_two_minutes_gets_everything_in_order(deploy):
    d = deploy()
    d.start_worker("a")
    d.start_worker("b")
    eventually(lambda: d.scalar(select(profiles.c.initial_sync_required).where(
        profiles.c.id == d.profile_id)) is False, timeout=30)
    calendar_id = d.sdk.list_calendars()[0]["calendar_id"]
    down_until = time.time() + 120
    d.receiver.status = lambda: 500 if time.time() < down_until else 200
    everyone = d.sdk.create_notification_channel(d.receiver.url)
    managed = d.sdk.create_notification_channel(d.receiver.url + "?own", only_managed=True)
    outage_began = datetime.now(UTC).replace(microsecond=0)

    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    for i in range(6):  # the user and the app keep changing things during the outage
        d.owner.add(f"/{CALENDAR}/", f"during-{i}", f"During {i}", day + timedelta(days=i + 1))
        if i % 2 == 0:
            d.sdk.upsert_event(calendar_id, {
                "event_id": f"app-{i}", "summary": f"App {i}", "tzid": "Etc/UTC",
                "start": (day + timedelta(days=i + 1, hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (day + timedelta(days=i + 1, hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")})
        time.sleep(15)
    assert time.time() < down_until, "the changes were all made during the outage"
    assert not d.receiver.delivered()
    eventually(lambda: time.time() > down_until and d.undelivered() == 0, timeout=180,
               interval=1)

    rows = d.all_notifications()
    order = {r.public_id: r.id for r in rows}
    by_channel: dict[str, list[Any]] = {}
    for got in d.receiver.delivered():
        by_channel.setdefault(got.json["channel"]["channel_id"], []).append(got)
    # Every notification arrived, each channel's in the order they were queued.
    assert {g.notification["notification_id"] for g in d.receiver.delivered()} == set(order)
    for channel in (everyone, managed):
        got = by_channel[channel["channel_id"]]
        assert got[0].notification["type"] == "verification"
        ids = [order[g.notification["notification_id"]] for g in got]
        assert ids == sorted(ids)
        changes = [g for g in got if g.notification["type"] == "change"]
        assert changes, channel
        assert changes[0].notification["changes_since"] <= \
            (outage_began + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A read from the first change's time shows every change made during the outage.
    first = next(g for g in by_channel[everyone["channel_id"]]
                 if g.notification["type"] == "change").notification["changes_since"]
    summaries = {e.get("summary") for e in read_since(d, first)}
    assert {f"During {i}" for i in range(6)} | {f"App {i}" for i in (0, 2, 4)} <= summaries
    own = [g for g in by_channel[managed["channel_id"]] if g.notification["type"] == "change"]
    assert own, "the only_managed channel heard of the app's writes"

    log = d.sdk.request_handler.get(
        url=f"{d.server.url}/v1/channels/{everyone['channel_id']}/deliveries",
        params={"limit": 500}).json()["deliveries"]
    failed = [x for x in log if x["status"] == 500]
    assert len(failed) >= 5 and all(x["error"] == "HTTP 500" for x in failed)
    assert any(x["status"] == 200 for x in log)
    assert all(r.cronofy_valid and r.calgate_valid for r in d.receiver.received)


SEEDED = 1000  # a first sync long enough to be killed in the middle of, on any machine


def test_two_workers_and_one_killed_mid_flight_lose_no_notification(deploy):
    d = deploy(seed_events=SEEDED)
    channel_count = 10
    for i in range(channel_count):  # before any worker runs: verifications wait
        d.sdk.create_notification_channel(f"{d.receiver.url}?n={i}")
    d.receiver.gate.clear()  # the receiver holds every request open
    d.start_worker("doomed")
    # It delivers the verifications (held open by the receiver) while it runs the
    # profile's first sync of the seeded events: kill it in the middle of both.
    eventually(lambda: d.receiver.in_flight >= channel_count, timeout=30, interval=0.05)
    lease = d.scalar(select(profiles.c.sync_lease_until).where(
        profiles.c.id == d.profile_id))
    first_sync_running = d.scalar(select(profiles.c.initial_sync_required).where(
        profiles.c.id == d.profile_id))
    d.kill_worker("doomed")
    assert lease is not None and first_sync_running, "the kill hit a running sync"
    in_flight_at_kill = {r.notification["notification_id"] for r in d.receiver.received}
    assert len(in_flight_at_kill) == channel_count

    d.receiver.gate.set()
    d.start_worker("b")
    d.start_worker("c")
    eventually(lambda: d.scalar(select(profiles.c.initial_sync_required).where(
        profiles.c.id == d.profile_id)) is False, timeout=90, interval=0.5)
    eventually(lambda: d.undelivered() == 0, timeout=60, interval=0.5)
    assert d.mirrored() == SEEDED

    # The normal case with two workers: more changes, each notification sent once.
    before = {r.notification["notification_id"] for r in d.receiver.received}
    day = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    for i in range(3):
        d.owner.add(f"/{CALENDAR}/", f"later-{i}", f"Later {i}", day + timedelta(days=i + 2))
        time.sleep(2)
    eventually(lambda: d.mirrored() == SEEDED + 3 and d.undelivered() == 0, timeout=60,
               interval=0.5)

    rows = d.all_notifications()
    assert rows and all(r.delivered_at is not None for r in rows)
    arrived = Counter(r.notification["notification_id"] for r in d.receiver.received
                      if 200 <= r.answered < 300)
    assert set(arrived) == {r.public_id for r in rows}, "every notification arrived"
    twice = {n for n, c in arrived.items() if c > 1}
    assert twice <= in_flight_at_kill, "only what the killed worker had in flight came twice"
    after = [n for n in arrived if n not in before]
    assert after and all(arrived[n] == 1 for n in after)
    kinds = Counter(r.type for r in rows)
    assert kinds["verification"] == channel_count
    assert kinds["profile_initial_sync_completed"] == channel_count
    assert kinds["change"] >= channel_count * 2


def test_a_stopping_worker_hands_its_delivery_to_another_at_once(deploy):
    # The delivery must still be open at the receiver when the worker is stopped, however
    # slow the machine: a timeout (and so a claim) far longer than the test needs.
    d = deploy(env={"CALGATE_NOTIFY_TIMEOUT": "60"})
    d.receiver.gate.clear()  # the first delivery hangs at the receiver
    d.sdk.create_notification_channel(d.receiver.url)
    d.start_worker("stopping")
    eventually(lambda: d.receiver.in_flight == 1, timeout=30, interval=0.05)
    d.start_worker("other", ready=True)
    time.sleep(1)
    assert len(d.receiver.received) == 1  # claimed: the other worker leaves it alone

    def verification() -> Any:
        return next(r for r in d.all_notifications() if r.type == "verification")

    held = verification()
    assert held.claimed_until is not None
    assert d.terminate_worker("stopping") == 0
    # Handed back when the grace ran out: by the time the stopping worker has exited, its
    # claim (2 x timeout + 10 s = 130 s here) is gone, released or already taken by the
    # other worker, which sends it again long before the claim would have expired.
    handed = verification()
    assert handed.claimed_until is None or handed.claimed_until != held.claimed_until
    d.receiver.gate.set()
    eventually(lambda: d.undelivered() == 0, timeout=30, interval=0.1)
    ids = [r.notification["notification_id"] for r in d.receiver.received
           if r.notification["type"] == "verification"]
    assert len(ids) == 2 and len(set(ids)) == 1  # the same notification, sent again
