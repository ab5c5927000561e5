"""GET /metrics (issue 6) after a real journey on SQLite and PostgreSQL: a token exchange
and a refresh over HTTP, a sync, an events read, a write applied upstream by the outbox and
another left pending, and a notification that fails to reach a closed port.

The process counters are compared with their values before the journey (other tests in
this process count too); what the database knows must equal the database, exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from gateway.observe.state import DatabaseCollector
from gateway.persistence.tables import (
    accounts,
    calendars,
    deliveries,
    managed_events,
    notifications,
    profiles,
)
from gateway.settings import Settings
from providers.memory.provider import WORLD
from tests.support.aio import run
from tests.support.oauth import Pkce, authorize, exchange, make_client
from tests.support.oauth_extra import refresh
from tests.support.processes import free_port

SCOPE = "read_write"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The "receiver" is a closed port on loopback, allowed as an operator would allow it.
    return settings.replace(callback_http_hosts="127.0.0.1",
                            outbound_allow_networks="127.0.0.0/8")


@pytest.fixture
def username() -> Iterator[str]:
    name = f"metrics-{uuid.uuid4().hex[:8]}@example.com"
    yield name
    WORLD.accounts.pop(name, None)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http) -> Samples:
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def before(name: str, **labels: str) -> float:
    """A process counter's value now, straight from the registry (a scrape would start the
    database collector's cache, and the final scrape must read the database afresh)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def count(gateway, query) -> int:
    with gateway.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def linked_profile(gateway, client_id: str) -> tuple[str, str]:
    """(profile id, account id) of the one account linked for ``client_id``."""
    with gateway.engine.connect() as conn:
        row = conn.execute(select(profiles.c.id, profiles.c.account_id).join(
            accounts, accounts.c.id == profiles.c.account_id).where(
            accounts.c.client_id == client_id)).one()
    return row.id, row.account_id


def stamp(days: float) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_metrics_after_a_journey(http, gateway, username):
    counters = {
        "code": ("calgate_oauth_tokens_issued_total", {"grant_type": "authorization_code"}),
        "refresh": ("calgate_oauth_tokens_issued_total", {"grant_type": "refresh_token"}),
        "sync": ("calgate_upstream_calls_total",
                 {"provider": "memory", "operation": "sync", "outcome": "ok"}),
        "put": ("calgate_upstream_calls_total",
                {"provider": "memory", "operation": "put_event", "outcome": "ok"}),
        "failed": ("calgate_notification_deliveries_total", {"outcome": "failed"}),
        "syncs": ("calgate_sync_duration_seconds_count", {"provider": "memory"}),
    }
    start = {key: before(name, **labels) for key, (name, labels) in counters.items()}

    # Link through the consent screen, exchange the code and refresh, all over HTTP.
    client = make_client(gateway, scopes=SCOPE)
    pkce = Pkce()
    code = authorize(http, client, scope=SCOPE, pkce=pkce, username=username)
    tokens = exchange(http, client, code, pkce)
    assert tokens["_status"] == 200, tokens
    tokens = refresh(http, client, str(tokens["refresh_token"])).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    profile_id = linked_profile(gateway, client.client_id)[0]
    assert run(gateway.worker.sync.sync_profile(profile_id)).error is None

    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0][
        "calendar_id"]
    r = http.get("/v1/events", headers=headers, params={"tzid": "Etc/UTC"})
    assert r.status_code == 200, r.text
    for event_id in ("applied", "pending"):
        r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers, json={
            "event_id": event_id, "summary": "Mentoring", "start": stamp(1),
            "end": stamp(1.05)})
        assert r.status_code == 202, r.text
    with gateway.engine.connect() as conn:
        applied = conn.execute(select(managed_events.c.id).where(
            managed_events.c.event_id == "applied")).scalar_one()
    assert run(gateway.worker.outbox.apply(applied)).ok

    # A channel whose callback is a closed port: its verification notification fails.
    closed = f"http://127.0.0.1:{free_port()}/hook"
    r = http.post("/v1/channels", headers=headers, json={"callback_url": closed})
    assert r.status_code == 200, r.text
    channel_id = r.json()["channel"]["channel_id"]
    due = gateway.worker.deliverer.due()
    assert due
    for notification_id in due:
        assert not run(gateway.worker.deliverer.deliver(notification_id)).ok

    samples = scrape(http)

    # Latency by route template, method and status class; no id in any HTTP label.
    assert value(samples, "calgate_http_request_duration_seconds_count", method="GET",
                 route="/v1/events", status_class="2xx") >= 1
    assert value(samples, "calgate_http_request_duration_seconds_count", method="POST",
                 route="/v1/calendars/{calendar_id}/events", status_class="2xx") >= 2
    assert value(samples, "calgate_http_request_duration_seconds_count", method="POST",
                 route="/oauth/token", status_class="2xx") >= 2
    assert value(samples, "calgate_http_request_duration_seconds_count", method="GET",
                 route="/oauth/flow/{flow_id}", status_class="2xx") >= 1
    subject = linked_profile(gateway, client.client_id)[1]
    for name, labels in samples:
        for _label, text in labels:
            for raw in (calendar_id, channel_id, subject, client.client_id, code):
                assert raw not in text, (name, labels)
            if name.startswith("calgate_http_"):
                assert not any(p in text for p in ("pro_", "cal_", "acc_", "chn_", "evt_"))

    # Process counters.
    def grew(key: str, by: float = 1) -> None:
        name, labels = counters[key]
        assert (value(samples, name, **labels) or 0) >= start[key] + by, key

    grew("code")
    grew("refresh")
    grew("sync")
    grew("syncs")
    grew("put")
    grew("failed", len(due))

    # What the database knows, exactly.
    pending_writes = count(gateway, select(func.count()).select_from(managed_events).where(
        managed_events.c.applied_version < managed_events.c.version))
    undelivered = count(gateway, select(func.count()).select_from(notifications).where(
        notifications.c.delivered_at.is_(None)))
    assert pending_writes == 1 and undelivered >= 1
    assert value(samples, "calgate_outbox_pending", kind="write") == pending_writes
    assert value(samples, "calgate_outbox_pending", kind="notification") == undelivered
    assert value(samples, "calgate_outbox_pending", kind="answer") == 0
    assert value(samples, "calgate_outbox_retrying", kind="notification") == undelivered
    assert value(samples, "calgate_state_up") == 1
    assert value(samples, "calgate_profiles", provider="memory", state="connected") == 1
    failures = count(gateway, select(func.count()).select_from(deliveries).where(
        deliveries.c.error.is_not(None)))
    assert failures >= 1
    assert value(samples, "calgate_notification_failed_attempts") == failures
    assert value(samples, "calgate_notification_channels_retrying") == 1
    assert value(samples, "calgate_notification_channels", status="active") == 1

    with gateway.engine.connect() as conn:
        synced = conn.execute(select(func.max(calendars.c.synced_at)).where(
            calendars.c.profile_id == profile_id)).scalar_one()
    synced = synced if synced.tzinfo else synced.replace(tzinfo=UTC)
    last = value(samples, "calgate_profile_last_sync_success_timestamp_seconds",
                 profile_id=profile_id, provider="memory")
    assert last == pytest.approx(synced.timestamp(), abs=0.01)
    lag = value(samples, "calgate_profile_sync_lag_seconds", profile_id=profile_id,
                provider="memory")
    assert lag is not None and 0 <= lag < 120


def test_a_failing_upstream_is_counted_by_error_class(http, gateway, username):
    client = make_client(gateway, scopes=SCOPE)
    pkce = Pkce()
    code = authorize(http, client, scope=SCOPE, pkce=pkce, username=username)
    assert exchange(http, client, code, pkce)["_status"] == 200
    profile_id = linked_profile(gateway, client.client_id)[0]
    labels = {"provider": "memory", "operation": "sync", "outcome": "Unavailable"}
    start = before("calgate_upstream_calls_total", **labels)
    WORLD.down = True
    try:
        assert run(gateway.worker.sync.sync_profile(profile_id)).error is not None
    finally:
        WORLD.down = False
    samples = scrape(http)
    assert value(samples, "calgate_upstream_calls_total", **labels) == start + 1
    assert value(samples, "calgate_profiles_sync_failing", provider="memory") == 1
    # Never synced: the lag runs from the link, and there is no last success yet.
    assert value(samples, "calgate_profile_sync_lag_seconds", profile_id=profile_id,
                 provider="memory") >= 0
    assert value(samples, "calgate_profile_last_sync_success_timestamp_seconds",
                 profile_id=profile_id, provider="memory") is None


def test_unmatched_paths_and_other_methods_make_no_new_labels(http):
    for path in ("/v1/nope/cal_123", "/no/such/evt_456", "/v1/calendars/cal_9/x"):
        assert http.get(path).status_code == 404
    http.request("BREW", "/healthz")
    samples = scrape(http)
    routes = {dict(labels)["route"] for (name, labels) in samples
              if name == "calgate_http_request_duration_seconds_count"}
    methods = {dict(labels)["method"] for (name, labels) in samples
               if name == "calgate_http_request_duration_seconds_count"}
    assert "unmatched" in routes
    assert not any("cal_" in r or "evt_" in r for r in routes)
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods


def test_the_database_is_read_once_per_period_and_an_outage_is_a_gauge(gateway, link,
                                                                       tmp_path):
    now = [100.0]
    collector = DatabaseCollector(gateway.engine, cache_seconds=5, clock=lambda: now[0])

    def profiles_seen() -> float:
        return sum(s.value for m in collector.collect() if m.name == "calgate_profiles"
                   for s in m.samples)

    assert profiles_seen() == 0
    link()
    assert profiles_seen() == 0  # the cached answer
    now[0] += 5
    assert profiles_seen() == 1

    broken = create_engine(f"sqlite:///{tmp_path}/no/such/folder/calgate.db")  # cannot open
    gone = DatabaseCollector(broken)
    [up] = [m for m in gone.collect()]  # no exception, only the outage
    assert (up.name, [s.value for s in up.samples]) == ("calgate_state_up", [0])
