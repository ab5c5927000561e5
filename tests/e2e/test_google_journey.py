"""Issue 4's journeys: a Google account linked through Calgate's consent screen and the
emulator's own Google consent page in Chromium; then the unmodified pycronofy SDK lists
calendars, writes, reads, updates, deletes and reads free/busy, with the emulator's state
showing exactly what was asked, once each. Changes made "in Google" arrive through the
watch webhook with polling set to an hour; a free/busy-only app asks Google for nothing
more than free/busy and the calendar list, and unticked permissions are caught."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest
from sqlalchemy import create_engine, select

from gateway.domain.upstream_apps import UpstreamApps
from gateway.persistence.tables import calendars, events, profiles
from gateway.secrets.local import LocalSecretStore
from providers.google import oauth as google_oauth
from tests.emulators.google import GoogleEmulator
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"
USER = "ada@example.com"


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.running() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emu: GoogleEmulator
           ) -> Iterator[GatewayServer]:
    """Polling every hour: anything that arrives sooner came through the watch webhook."""
    with GatewayServer(tmp_path_factory.mktemp("calgate-google"), env={
            "CALGATE_GOOGLE_URL": emu.base_url, "CALGATE_PROVIDER_PUSH": "on",
            "CALGATE_SYNC_INTERVAL": "3600"}) as running:
        emu.register_app("google-cid", "google-secret", "My Portal App",
                         [f"{running.url}/oauth/callback/google"])
        store = LocalSecretStore(running.data_dir / "secrets")
        UpstreamApps(store).configure("google", "google-cid", "google-secret")
        store.close()
        yield running


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def link(browser: Any, server: GatewayServer, app: RegisteredApp, callback: CallbackServer,
         scope: str, shots: Any, untick: tuple[str, ...] = (),
         email: str = USER) -> Any:
    """Through Calgate's screens and the emulator's Google page; returns the open page."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(sdk(server, app).user_auth_link(callback.url, scope=scope, state="g-1"))
    page.click("#provider-google")
    shots(page, "connect-google")
    page.click("#connect")
    page.wait_for_selector("#consent")  # the emulator's Google consent page
    page.fill("#email", email)
    for scope_url in untick:
        page.uncheck(f'input[value="{scope_url}"]')
    shots(page, "google-consent")
    page.click("#allow")
    page.wait_for_load_state()
    return page


def requested_scopes(emu: GoogleEmulator) -> set[str]:
    asked = [r for r in emu.requests if r.path == "/o/oauth2/v2/auth"]
    return set(asked[-1].query["scope"][0].split())


def test_google_account_through_consent_and_pycronofy(browser, server, emu, callback, shots):
    emu.add_user(USER)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    emu.add_event(USER, "primary", {"summary": "Dentist", "start": {
        "dateTime": start.isoformat()}, "end": {"dateTime": (start + timedelta(hours=1))
                                                .isoformat()}})
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    page = link(browser, server, app, callback, FULL, shots)
    page.wait_for_selector("#allow")
    shots(page, "calgate-review")
    assert USER in page.content()
    page.click("#allow")
    page.wait_for_load_state()
    page.context.close()
    assert len(callback.queries) == 1 and "code" in callback.queries[0], callback.queries

    client = sdk(server, app)
    client.get_authorization_from_code(callback.queries[0]["code"], redirect_uri=callback.url)
    profile = client.userinfo()["cronofy.data"]["profiles"][0]
    assert profile["provider_name"] == "google" and profile["profile_name"] == USER
    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    (calendar,) = [c for c in client.list_calendars() if c["calendar_primary"]]
    assert calendar["calendar_integrated_conferencing_available"] is True
    calendar_id = calendar["calendar_id"]
    window = {"from_date": (start - timedelta(days=1)).date().isoformat(),
              "to_date": (start + timedelta(days=10)).date().isoformat(), "tzid": "Etc/UTC"}
    assert [e["summary"] for e in client.read_events(calendar_ids=(calendar_id,), **window)
            ] == ["Dentist"]

    emu.clear_requests()
    event = {"event_id": "session-1", "summary": "Mentoring session",
             "description": "Bring questions", "start": start + timedelta(days=1),
             "end": start + timedelta(days=1, hours=1)}
    client.upsert_event(calendar_id, event)
    mine = eventually(lambda: [e for e in emu.events(USER) if e.get("summary") ==
                               "Mentoring session"])
    assert mine[0]["description"] == "Bring questions"
    assert mine[0]["extendedProperties"]["private"]  # carries the client's event id
    read = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(calendar_id,), include_managed=True, **window)
        if e.get("event_id") == "session-1"])
    assert read[0]["summary"] == "Mentoring session"

    client.upsert_event(calendar_id, {**event, "summary": "Moved session"})
    eventually(lambda: [e for e in emu.events(USER) if e.get("summary") == "Moved session"])
    client.delete_event(calendar_id, "session-1")
    eventually(lambda: not [e for e in emu.events(USER)
                            if e.get("summary") == "Moved session"])
    blocks = list(client.read_free_busy(calendar_ids=(calendar_id,), **window))
    assert len(blocks) == 1 and "summary" not in blocks[0]

    # Exactly what was asked, once each: one insert (after one lookup by the client's key),
    # one patch, one delete; no retries, no duplicates.
    assert emu.count("events.insert") == 1
    assert emu.count("events.patch") == 1
    assert emu.count("events.delete") == 1
    assert [e["summary"] for e in emu.events(USER)] == ["Dentist"]

    # Moved "in Google": it arrives through the watch webhook (polling is hourly).
    eventually(lambda: emu.channels)  # the worker opened a channel after the first sync
    since = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((since - datetime.now(UTC)).total_seconds() + 0.05)
    (dentist,) = [e for e in emu.events(USER) if e["summary"] == "Dentist"]
    pushed = len(emu.deliveries())
    emu.move_event(USER, "primary", dentist["id"], start + timedelta(hours=3),
                   start + timedelta(hours=4))
    moved = (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(calendar_id,), last_modified=since, **window)
        if e["summary"] == "Dentist" and e["start"] == moved], timeout=10)
    assert len(changed) == 1
    news = emu.deliveries()[pushed:]
    assert [d.state for d in news] == ["exists"] and news[0].status == 200

    # An expired sync token: a full resync, with no duplicate and no lost event.
    emu.expire_sync_tokens()
    emu.add_event(USER, "primary", {"summary": "Added meanwhile", "start": {
        "dateTime": (start + timedelta(days=2)).isoformat()}, "end": {
        "dateTime": (start + timedelta(days=2, hours=1)).isoformat()}})
    after = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(calendar_id,), **window) if e["summary"] == "Added meanwhile"]
        and list(client.read_events(calendar_ids=(calendar_id,), **window)))
    assert sorted(e["summary"] for e in after) == ["Added meanwhile", "Dentist"]
    assert emu.count(status=410) >= 1


def test_free_busy_only_asks_google_for_free_busy_and_keeps_no_text(browser, server, emu,
                                                                   callback, shots):
    email = "fb@example.com"
    emu.add_user(email)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                             microsecond=0)
    emu.add_event(email, "primary", {"summary": "Secret board meeting", "description": "M&A",
                                     "start": {"dateTime": start.isoformat()},
                                     "end": {"dateTime": (start + timedelta(hours=2))
                                             .isoformat()}})
    app = server.register_client(name="Slot Finder", redirect_uris=[callback.url],
                                 scopes=["read_free_busy"], legacy_no_pkce=True)
    page = link(browser, server, app, callback, "read_free_busy", shots, email=email)
    assert requested_scopes(emu) == {google_oauth.EVENTS_FREEBUSY,
                                     google_oauth.CALENDARLIST_READONLY}
    page.click("#allow")
    page.wait_for_load_state()
    page.context.close()
    client = sdk(server, app)
    client.get_authorization_from_code(callback.queries[-1]["code"], redirect_uri=callback.url)
    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    blocks = list(client.read_free_busy(
        from_date=start.date().isoformat(),
        to_date=(start + timedelta(days=2)).date().isoformat(), tzid="Etc/UTC"))
    assert [b["start"] for b in blocks] == [start.strftime("%Y-%m-%dT%H:%M:%SZ")]
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(events.c.sealed).join(
                calendars, calendars.c.id == events.c.calendar_id).join(
                profiles, profiles.c.id == calendars.c.profile_id).where(
                profiles.c.profile_name == email)).all()
    finally:
        engine.dispose()
    assert rows and all(r.sealed is None for r in rows)


def test_an_unticked_permission_is_explained_and_nothing_is_linked(browser, server, emu,
                                                                  callback, shots):
    email = "picky@example.com"
    emu.add_user(email)
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    page = link(browser, server, app, callback, FULL, shots, email=email,
                untick=(google_oauth.EVENTS_OWNED,))
    page.wait_for_selector("#missing-scopes")
    shots(page, "missing-scope")
    text = page.inner_text("#missing-scopes")
    assert google_oauth.describe_scope(google_oauth.EVENTS_OWNED) in text
    assert callback.queries == []
    # Try again, ticking everything this time: the review step follows.
    page.click("#try-again")
    page.wait_for_selector("#consent")
    page.fill("#email", email)
    page.click("#allow")
    page.wait_for_selector("#allow")
    assert email in page.content()
    page.context.close()
