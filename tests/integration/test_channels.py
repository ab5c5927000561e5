"""Notification channels to client apps (issue 5): the API's shapes and rules, and what the
worker delivers to a real receiver on loopback, on SQLite and PostgreSQL.

The worker is driven by hand here (``deliver_all``), so each step's effect is exact; the
multi-process journeys are in tests/e2e/test_notifications.py.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.domain.sealing import DataKeys
from gateway.persistence.tables import channels, deliveries, notifications
from gateway.services.accounts import PendingAccount
from gateway.services.channels import ChannelError, ChannelSettings, check_callback_url
from gateway.settings import Settings
from gateway.sync.engine import SyncEngine
from oauth_server.scopes import expand
from providers.memory.provider import WORLD
from providers.outbound import OutboundPolicy
from tests.support.aio import run
from tests.support.linked import get, hour
from tests.support.outbound import LOOPBACK
from tests.support.receiver import Receiver
from tests.support.waiting import Deadline


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The receiver lives on loopback over plain http: allowed explicitly, as an operator would.
    return settings.replace(callback_http_hosts="127.0.0.1",
                            outbound_allow_networks="127.0.0.0/8", worker_concurrency=2)


@pytest.fixture
def secret_of(gateway):
    def find(client_id: str) -> str:
        active = gateway.signing.active(client_id)
        assert active, "make_client keeps the secret for signing"
        return active[0]
    return find


@pytest.fixture
def receiver(link, secret_of):
    made: list[Receiver] = []

    def start(linked) -> Receiver:
        r = Receiver(linked.client_id, secret_of(linked.client_id)).start()
        made.append(r)
        return r
    yield start
    for r in made:
        r.stop()


def deliver_all(gateway, rounds: int = 20) -> int:
    """Run the worker's delivery until nothing is due; returns the attempts made."""
    made = 0
    for _ in range(rounds):
        due = gateway.worker.deliverer.due()
        if not due:
            return made
        for notification_id in due:
            run(gateway.worker.deliverer.deliver(notification_id))
            made += 1
    return made


def apply_writes(gateway) -> None:
    for managed_id in gateway.worker.outbox.due():
        applied = run(gateway.worker.outbox.apply(managed_id))
        assert applied.ok, applied


def make_due(gateway, channel_id: str) -> None:
    """Skip the backoff wait: the channel's pending notifications are due now."""
    with gateway.engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.channel_id == channel_id)
                     .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))


def create(http, headers, url, **filters):
    body = {"callback_url": url} | ({"filters": filters} if filters else {})
    return http.post("/v1/channels", json=body, headers=headers)


def test_create_list_close_in_cronofys_shapes_and_verification_is_signed(
        http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.sync()
    r = create(http, headers, hook.url)
    assert r.status_code == 200, r.text
    channel = r.json()["channel"]
    assert channel["channel_id"].startswith("chn_")
    assert channel["callback_url"] == hook.url and channel["filters"] == {}
    # Identical creation returns the same channel; different filters make another one.
    assert create(http, headers, hook.url).json()["channel"]["channel_id"] == \
        channel["channel_id"]
    other = create(http, headers, hook.url, calendar_ids=[linked.calendar_id],
                   only_managed=True).json()["channel"]
    assert other["channel_id"] != channel["channel_id"]
    assert other["filters"] == {"calendar_ids": [linked.calendar_id], "only_managed": True}
    listed = http.get("/v1/channels", headers=headers).json()["channels"]
    assert [c["channel_id"] for c in listed] == [channel["channel_id"], other["channel_id"]]
    assert listed[0]["status"] == "active" and listed[0]["pending_notifications"] == 1

    assert deliver_all(gateway) == 2
    verification = hook.of_type("verification")
    assert len(verification) == 2
    got = verification[0]
    assert got.cronofy_valid and got.calgate_valid
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.json["channel"]["channel_id"] in {channel["channel_id"], other["channel_id"]}
    assert got.notification["notification_id"] == got.headers["Calgate-Notification-Id"]

    assert http.request("DELETE", f"/v1/channels/{other['channel_id']}", headers=headers,
                       json={}).status_code == 202
    assert http.request("DELETE", f"/v1/channels/{other['channel_id']}", headers=headers,
                       json={}).status_code == 404
    assert len(http.get("/v1/channels", headers=headers).json()["channels"]) == 1


@pytest.mark.parametrize(("url", "code"), [
    ("ftp://example.com/hook", "invalid"),
    ("not a url", "invalid"),
    ("https://user:pw@example.com/hook", "invalid"),
    ("http://example.com/hook", "https_required"),
    ("https://10.1.2.3/hook", "forbidden_address"),
    ("https://169.254.169.254/latest/meta-data", "forbidden_address"),
    ("https://[::1]/hook", "forbidden_address"),
])
def test_callback_urls_calgate_must_not_post_to_are_422(http, link, url, code):
    linked = link()
    r = create(http, linked.token("read_write"), url)
    assert r.status_code == 422, r.text
    assert r.json()["errors"]["callback_url"][0]["key"] == f"errors.{code}"


def test_loopback_is_refused_unless_the_operator_allows_it():
    def resolve(host: str, port: int) -> list[str]:
        return {"hooks.example": ["93.184.216.34"], "rebind.example": ["93.184.216.34",
                                                                      "127.0.0.1"]}[host]
    strict = ChannelSettings(outbound=OutboundPolicy(resolver=resolve))
    check_callback_url("https://hooks.example/x", strict)
    for url in ("https://127.0.0.1/x", "https://rebind.example/x",
                "https://169.254.169.254/x", "https://[::ffff:127.0.0.1]/x"):
        with pytest.raises(ChannelError) as refused:
            check_callback_url(url, strict)
        assert refused.value.code == "forbidden_address"
    allowing = ChannelSettings(http_hosts=("127.0.0.1",),
                               outbound=OutboundPolicy.allowing(["127.0.0.0/8"], resolve))
    check_callback_url("http://127.0.0.1:9/x", allowing)
    check_callback_url("https://rebind.example/x", allowing)
    with pytest.raises(ChannelError):  # allowing loopback allows nothing else
        check_callback_url("https://169.254.169.254/x", allowing)


def test_scope_rules_filters_and_limit(http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    one_way = linked.token("write_only")
    r = create(http, one_way, hook.url)
    assert r.status_code == 403 and r.json() == {"error": "insufficient_scope",
                                                 "required_scope": "read_events"}
    assert create(http, one_way, hook.url, only_managed=True).status_code == 200
    full = linked.token("read_write")
    r = create(http, full, hook.url, calendar_ids=[])
    assert r.json()["errors"]["filters.calendar_ids"][0]["key"] == "errors.required"
    r = create(http, full, hook.url, calendar_ids=["cal_nope"])
    assert r.json()["errors"]["filters.calendar_ids"][0]["key"] == "errors.not_found"
    # Another account's calendar is as unknown as a made-up one.
    stranger = link()
    stranger.sync()
    r = create(http, full, hook.url, calendar_ids=[stranger.calendar_id])
    assert r.status_code == 422
    # Unknown filter keys are ignored (SDKs pass arbitrary ones).
    assert create(http, full, hook.url, some_future_filter=1).status_code == 200
    gateway.channels.settings = ChannelSettings(per_account=2, http_hosts=("127.0.0.1",),
                                                outbound=LOOPBACK)
    r = create(http, full, hook.url + "?third")
    assert r.json()["errors"]["callback_url"][0]["key"] == "errors.too_many_channels"
    # Channels are the account's own: another account sees none and cannot close them.
    theirs = stranger.token("read_write")
    assert http.get("/v1/channels", headers=theirs).json()["channels"] == []
    mine = http.get("/v1/channels", headers=full).json()["channels"][0]["channel_id"]
    assert http.delete(f"/v1/channels/{mine}", headers=theirs).status_code == 404


def test_upstream_changes_reach_the_receiver_and_the_last_modified_read_shows_them(
        http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.sync()
    channel = create(http, headers, hook.url).json()["channel"]
    deliver_all(gateway)

    linked.put("standup", hour(24), summary="Standup")
    linked.sync()
    linked.put("retro", hour(30), summary="Retro")
    linked.sync()  # two syncs before the worker ran: one change, the earliest time
    assert deliver_all(gateway) == 1
    changes = hook.of_type("change")
    assert len(changes) == 1
    since = changes[0].notification["changes_since"]
    assert changes[0].json["channel"]["channel_id"] == channel["channel_id"]
    assert changes[0].cronofy_valid and changes[0].calgate_valid
    events = get(http, "/v1/events", headers, last_modified=since,
                 include_deleted="true").json()["events"]
    assert {e["summary"] for e in events} == {"Standup", "Retro"}
    retro = next(e["event_uid"] for e in events if e["summary"] == "Retro")

    WORLD.remove(linked.upstream, linked.upstream_calendar, "retro")
    linked.sync()
    deliver_all(gateway)
    changes = hook.of_type("change")
    assert len(changes) == 2
    events = get(http, "/v1/events", headers, include_deleted="true",
                 last_modified=changes[1].notification["changes_since"]).json()["events"]
    # (changes_since is in whole seconds, so a change made in the same second may be
    # reported again: at least once.)
    assert {e["event_uid"]: e.get("deleted", False) for e in events}[retro] is True
    # A sync that changes nothing tells nobody anything.
    linked.sync()
    assert deliver_all(gateway) == 0


def test_only_managed_channels_hear_of_the_apps_own_events_including_its_writes(
        http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.sync()
    create(http, headers, hook.url, only_managed=True)
    deliver_all(gateway)
    linked.put("someone-elses", hour(5))
    linked.sync()
    assert deliver_all(gateway) == 0  # not the app's event: nothing for this channel

    r = http.post(f"/v1/calendars/{linked.calendar_id}/events", headers=headers, json={
        "event_id": "mentoring-1", "summary": "Mentoring", "start": hour(48).isoformat(),
        "end": hour(49).isoformat(), "tzid": "Etc/UTC"})
    assert r.status_code == 202
    apply_writes(gateway)  # applied upstream: the app hears about its own write too
    assert deliver_all(gateway) == 1
    change = hook.of_type("change")[-1]
    events = get(http, "/v1/events", headers, only_managed="true", include_deleted="true",
                 last_modified=change.notification["changes_since"]).json()["events"]
    assert [e["event_id"] for e in events] == ["mentoring-1"]

    # The user moves, then cancels, the app's event in their own calendar.
    upstream = WORLD.accounts[linked.upstream].calendars[linked.upstream_calendar]
    resource_id, instances = next((k, v) for k, v in upstream.resources.items()
                                  if v[0].managed_key)
    moved = replace(instances[0], start=hour(72), end=hour(73))
    WORLD.put(linked.upstream, linked.upstream_calendar, resource_id, [moved])
    linked.sync()
    deliver_all(gateway)
    since = hook.of_type("change")[-1].notification["changes_since"]
    events = get(http, "/v1/events", headers, only_managed="true", include_deleted="true",
                 last_modified=since).json()["events"]
    assert [(e["event_id"], e["start"]) for e in events] == [
        ("mentoring-1", hour(72).strftime("%Y-%m-%dT%H:%M:%SZ"))]
    WORLD.remove(linked.upstream, linked.upstream_calendar, resource_id)
    linked.sync()
    deliver_all(gateway)
    since = hook.of_type("change")[-1].notification["changes_since"]
    events = get(http, "/v1/events", headers, only_managed="true", include_deleted="true",
                 last_modified=since).json()["events"]
    assert [(e["event_id"], e.get("deleted")) for e in events] == [("mentoring-1", True)]


def test_failures_are_retried_in_order_logged_and_a_failing_channel_is_marked(
        http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.sync()
    channel_id = create(http, headers, hook.url).json()["channel"]["channel_id"]
    hook.status = 500
    assert deliver_all(gateway) == 1  # the verification fails; its retry is not due yet
    linked.put("a", hour(3))
    linked.sync()
    assert gateway.worker.deliverer.due() == []  # the change waits behind the verification
    for _ in range(3):
        make_due(gateway, channel_id)
        deliver_all(gateway)
    log = http.get(f"/v1/channels/{channel_id}/deliveries", headers=headers).json()
    assert [(d["type"], d["attempt"], d["status"]) for d in log["deliveries"]] == [
        ("verification", n, 500) for n in (4, 3, 2, 1)]
    assert log["deliveries"][0]["error"] == "HTTP 500"
    assert log["channel"]["pending_notifications"] == 2

    # A day of failures later the channel is marked failing, visibly, and nothing is lost.
    with gateway.engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.channel_id == channel_id)
                     .values(first_failed_at=datetime.now(UTC) - timedelta(hours=25)))
    make_due(gateway, channel_id)
    deliver_all(gateway)
    listed = http.get("/v1/channels", headers=headers).json()["channels"][0]
    assert listed["status"] == "failing" and listed["failing_since"] is not None
    assert listed["pending_notifications"] == 2

    hook.status = 200
    make_due(gateway, channel_id)
    deliver_all(gateway)
    assert [r.notification["type"] for r in hook.delivered()] == ["verification", "change"]
    listed = http.get("/v1/channels", headers=headers).json()["channels"][0]
    assert listed["status"] == "active" and listed["pending_notifications"] == 0


def test_replay_sends_a_change_from_the_given_time(http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.put("old", hour(2), summary="Old")
    linked.sync()
    channel_id = create(http, headers, hook.url).json()["channel"]["channel_id"]
    deliver_all(gateway)
    r = http.post(f"/v1/channels/{channel_id}/replay", headers=headers,
                  json={"since": "2020-01-01T00:00:00Z"})
    assert r.status_code == 202 and r.json() == {"replay": {"queued": 1}}
    deliver_all(gateway)
    change = hook.of_type("change")[-1]
    assert change.notification["changes_since"] == "2020-01-01T00:00:00Z"
    events = get(http, "/v1/events", headers,
                 last_modified=change.notification["changes_since"]).json()["events"]
    assert [e["summary"] for e in events] == ["Old"]
    r = http.post(f"/v1/channels/{channel_id}/replay", headers=headers, json={"since": "x"})
    assert r.status_code == 422
    assert http.post("/v1/channels/chn_nope/replay", headers=headers,
                     json={"since": "2020-01-01T00:00:00Z"}).status_code == 404


def test_profile_disconnected_and_initial_sync_completed(http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    create(http, headers, hook.url)
    linked.sync()  # the first sync of the profile
    deliver_all(gateway)
    done = hook.of_type("profile_initial_sync_completed")
    assert [d.notification["profile_id"] for d in done] == [linked.profile_id]

    WORLD.accounts[linked.upstream].password = "changed by the user"
    engine = SyncEngine(gateway.engine, gateway.secrets, DataKeys(gateway.engine,
                                                                   gateway.secrets))
    with gateway.engine.begin() as conn:
        from gateway.persistence.tables import profiles
        conn.execute(update(profiles).where(profiles.c.id == linked.profile_id)
                     .values(next_sync_at=datetime.now(UTC)))
    outcome = run(engine.sync_profile(linked.profile_id))
    assert outcome.error is not None
    deliver_all(gateway)
    gone = hook.of_type("profile_disconnected")
    assert [d.notification["profile_id"] for d in gone] == [linked.profile_id]


def test_a_one_way_app_that_becomes_two_way_gets_a_full_change(http, gateway, link,
                                                                receiver):
    linked = link("write_only")
    hook = receiver(linked)
    linked.put("private-life", hour(10), summary="Dentist")
    linked.sync()
    one_way = linked.token("write_only")
    create(http, one_way, hook.url, only_managed=True)
    deliver_all(gateway)

    # The user authorizes again, now with read_events: the same account, a wider grant.
    path = gateway.accounts.park_credentials(uuid.uuid4().hex,
                                             {"account": linked.upstream, "password": "pw"})
    with gateway.engine.connect() as conn:
        from gateway.persistence.tables import accounts
        link_key = conn.execute(select(accounts.c.link_key_hash).where(
            accounts.c.id == linked.subject)).scalar()
    assert link_key is None  # linked without a browser: join the account by its key
    with gateway.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == linked.subject)
                     .values(link_key_hash="k"))
    again = gateway.accounts.link(linked.client_id, PendingAccount(
        "memory", "memory", linked.upstream, linked.upstream, path), "k",
        sorted(expand(["read_write"])))
    assert again.subject == linked.subject
    two_way = linked.token("read_write")
    two_way_channel = create(http, two_way, hook.url + "?two-way").json()["channel"]
    deliver_all(gateway)
    linked.sync()  # the full resync under the wider grant
    deliver_all(gateway)
    full = [r for r in hook.of_type("change")
            if r.json["channel"]["channel_id"] == two_way_channel["channel_id"]]
    assert full, "the two-way channel heard of the resync"
    events = get(http, "/v1/events", two_way,
                 last_modified=full[-1].notification["changes_since"]).json()["events"]
    assert [e["summary"] for e in events] == ["Dentist"]


def test_erasing_the_account_erases_its_channels_and_log(http, gateway, link, receiver):
    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    channel_id = create(http, headers, hook.url).json()["channel"]["channel_id"]
    deliver_all(gateway)
    gateway.accounts.revoke_subject(linked.subject)
    with gateway.engine.connect() as conn:
        for table in (channels, notifications, deliveries):
            column = table.c.id if table is channels else table.c.channel_id
            assert conn.execute(select(column).where(column == channel_id)).first() is None


def test_the_worker_runs_at_most_its_concurrency_and_never_sends_a_task_twice(
        http, gateway, link, receiver):
    import asyncio

    linked = link()
    hook = receiver(linked)
    headers = linked.token("read_write")
    linked.sync()  # not due again for a while: only the deliveries are
    for i in range(5):  # five channels, five verifications due at once
        assert create(http, headers, f"{hook.url}?n={i}").status_code == 200
    hook.gate.clear()
    worker = gateway.worker

    async def scenario() -> tuple[int, int, int]:
        await worker.broker.startup()
        first = await worker.sweep()
        again = await worker.sweep()  # all five are queued or running: none sent again
        peak = 0
        for _ in range(30):
            await asyncio.sleep(0.05)
            peak = max(peak, hook.in_flight)
        hook.gate.set()
        deadline = Deadline(20)
        while worker.queued and not deadline.passed():
            await asyncio.sleep(0.05)
        await worker.broker.shutdown()
        return first, again, peak

    first, again, peak = run(scenario())
    assert (first, again) == (5, 0)
    assert peak == 2  # CALGATE_WORKER_CONCURRENCY
    assert len(hook.of_type("verification")) == 5
