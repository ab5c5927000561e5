"""Cached read pages never outlive a change to the mirror, and the window's lower bound on
``start_at`` (from each calendar's longest event) never hides an event that overlaps it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.persistence.tables import accounts, calendars
from tests.support import aio
from tests.support.linked import get, hour
from tests.support.oauth import make_client


@pytest.fixture
def settings(settings):
    return settings.replace(worker_mode="external", read_cache_mb=8)


def generation(gateway, subject):
    with gateway.engine.connect() as conn:
        return conn.execute(select(accounts.c.mirror_generation).where(
            accounts.c.id == subject)).scalar_one()


def test_a_repeated_read_is_served_from_the_cache(http, gateway, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    auth = account.token("read_events")
    first = get(http, "/v1/events", auth)
    hits = gateway.pages.hits
    second = get(http, "/v1/events", auth)
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert gateway.pages.hits == hits + 1


def test_an_upstream_change_is_seen_at_once(http, gateway, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    auth = account.token("read_events")
    assert [e["summary"] for e in get(http, "/v1/events", auth).json()["events"]] == ["Event a"]
    before = generation(gateway, account.subject)
    account.put("a", hour(24), summary="Renamed")
    account.put("b", hour(30))
    account.sync()
    assert generation(gateway, account.subject) > before
    events = get(http, "/v1/events", auth).json()["events"]
    assert [e["summary"] for e in events] == ["Renamed", "Event b"]


def test_a_sync_with_no_change_keeps_the_generation(http, gateway, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    before = generation(gateway, account.subject)
    account.sync()
    assert generation(gateway, account.subject) == before


def test_a_write_applied_upstream_is_seen_at_once(http, gateway, link):
    account = link()
    account.sync()
    auth = account.token("read_write")
    read = {"include_managed": "1"}
    assert get(http, "/v1/events", auth, **read).json()["events"] == []
    r = http.post(f"/v1/calendars/{account.calendar_id}/events", headers=auth, json={
        "event_id": "mine", "summary": "Mentoring",
        "start": hour(26).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": hour(27).strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert r.status_code == 202, r.text
    for managed_id in gateway.worker.outbox.due():
        aio.run(gateway.worker.outbox.apply(managed_id))
    events = get(http, "/v1/events", auth, **read).json()["events"]
    assert [e.get("event_id") for e in events] == ["mine"]


def test_a_removed_calendar_is_seen_at_once(http, gateway, link):
    account = link()
    account.put("a", hour(24))
    account.sync()
    auth = account.token("read_events")
    assert len(get(http, "/v1/events", auth).json()["events"]) == 1
    from providers.memory.provider import WORLD
    WORLD.accounts[account.upstream].calendars.pop(account.upstream_calendar)
    account.sync()
    assert get(http, "/v1/events", auth).json()["events"] == []


def test_pages_are_not_shared_between_client_apps(http, gateway, link):
    """A page's next_page URL is bound to the client that read it: a second app reading
    the same window of the same account must get its own page, not the cached one."""
    account = link()
    for i in range(101):
        account.put(f"e{i:03}", hour(24 + i))
    account.sync()
    first = get(http, "/v1/events", account.token("read_events")).json()
    other = dataclasses.replace(account, client_id=make_client(gateway).client_id)
    auth = other.token("read_events")
    second = get(http, "/v1/events", auth).json()
    assert second["events"] == first["events"]
    assert second["pages"]["next_page"] != first["pages"]["next_page"]
    assert http.get(second["pages"]["next_page"], headers=auth).status_code == 200
    assert http.get(first["pages"]["next_page"], headers=auth).status_code == 404


def test_long_events_starting_well_before_the_window_still_show(http, gateway, link):
    account = link()
    start = hour(24 * 3).replace(hour=0)  # midnight UTC, three days from now
    account.put("long", start - timedelta(days=20), start + timedelta(days=2))
    account.put("short", start - timedelta(days=2))
    account.put("inside", start + timedelta(hours=3))
    account.sync()
    with gateway.engine.connect() as conn:
        span = conn.execute(select(calendars.c.max_event_seconds).where(
            calendars.c.id == account.calendar_id)).scalar_one()
    assert span == 22 * 86400
    auth = account.token("read_events")
    window = {"from": start.date().isoformat(),
              "to": (start + timedelta(days=1)).date().isoformat()}
    summaries = [e["summary"] for e in get(http, "/v1/events", auth, **window).json()["events"]]
    assert summaries == ["Event long", "Event inside"]
