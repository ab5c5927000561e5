"""Exchange push and a password change, end to end at the gateway: a real uvicorn serving
Calgate (its worker in the same process) over an Exchange mailbox linked through the consent
form, the Exchange emulator holding EWS pull subscriptions, and the API read as a client
app would.

Polling is set to an hour and no public URL is configured (no webhook could reach this
server): anything that arrives sooner came through a pull subscription.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pycronofy
import pytest
from sqlalchemy import Engine

from providers.exchange import linking, push
from tests.emulators.exchange import ExchangeEmulator
from tests.support import consent_http
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.receiver import Receiver
from tests.support.server_db import channels_in, profile_row, server_engine, utc
from tests.support.waiting import eventually

FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"
PULL_SECONDS = 1


@pytest.fixture(scope="module")
def emu() -> Iterator[ExchangeEmulator]:
    running = ExchangeEmulator().start()
    yield running
    running.stop()


@pytest.fixture
def server(tmp_path: Path, db_url: str, emu: ExchangeEmulator) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path, db_url, env={
            "CALGATE_EXCHANGE_CA_BUNDLE": str(emu.ca.pem_path),
            "CALGATE_SYNC_INTERVAL": "3600", "CALGATE_PUSH_PULL_SECONDS": str(PULL_SECONDS),
            "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1"}) as running:
        yield running


@pytest.fixture
def callback() -> Iterator[CallbackServer]:
    """The client app's redirect target."""
    with CallbackServer() as target:
        yield target


@pytest.fixture
def engine(server: GatewayServer) -> Iterator[Engine]:
    """The server's database, read from the test (state, never a substitute for the API)."""
    with server_engine(server.database_url) as made:
        yield made


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def link(server: GatewayServer, emu: ExchangeEmulator, callback: CallbackServer,
         email: str, password: str) -> tuple[RegisteredApp, pycronofy.Client]:
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    client = sdk(server, app)
    got = consent_http.consent_over_http(
        client.user_auth_link(callback.url, scope=FULL, state="push"), server.url, callback,
        "exchange", {"email": email, "password": password, "ews_url": emu.ews_url()},
        expect=email)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    return app, client


def new_user(emu: ExchangeEmulator, password: str) -> str:
    email = f"push-{uuid.uuid4().hex[:8]}@contoso.test"
    emu.add_user(email, password)
    return email


def since() -> str:
    """A last_modified boundary: now, to the second (the API's precision), minus one."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tomorrow_at(hour: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0,
                                                           microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def window(start: datetime, **extra: str) -> dict[str, str]:
    return {"from_date": (start - timedelta(days=1)).date().isoformat(),
            "to_date": (start + timedelta(days=3)).date().isoformat(), "tzid": "Etc/UTC",
            **extra}


def changed_since(client: pycronofy.Client, start: datetime, boundary: str, summary: str
                  ) -> list[dict[str, Any]]:
    """Waits until the events changed since ``boundary`` include one named ``summary``."""
    return eventually(lambda: [e for e in client.read_events(
        **window(start, last_modified=boundary)) if e["summary"] == summary], timeout=30)


def summaries(client: pycronofy.Client, start: datetime, **extra: str) -> list[str]:
    return sorted(e["summary"] for e in client.read_events(**window(start, **extra)))


def test_an_edit_in_exchange_reaches_last_modified_through_the_subscription(
        server: GatewayServer, emu: ExchangeEmulator, engine: Engine,
        callback: CallbackServer) -> None:
    email = new_user(emu, "Passw0rd!")
    start = tomorrow_at(9)
    emu.add_item(email, "standup", Subject="Standup", Start=stamp(start),
                 End=stamp(start + timedelta(minutes=30)))
    _app, client = link(server, emu, callback, email, "Passw0rd!")
    eventually(lambda: not profile_row(engine, email).initial_sync_required)
    assert summaries(client, start) == ["Standup"]

    # A pull subscription on the calendar, its position kept in the channel row.
    (channel,) = eventually(lambda: channels_in(engine), timeout=30)
    (sub,) = emu.subscriptions.of(email)
    assert push.decode(channel.resource_id)[0] == sub.subscription_id
    assert sub.folders == {emu.mailbox(email).calendar.folder_id}
    eventually(lambda: emu.subscriptions.of(email)[0].polls >= 2)  # read on its own

    # Edited "in Outlook": the subscription brings it, long before the hourly poll.
    boundary = since()
    polled = profile_row(engine, email).next_sync_at
    emu.edit(email, "standup", Subject="Daily sync")
    renamed = changed_since(client, start, boundary, "Daily sync")
    assert len(renamed) == 1
    assert summaries(client, start) == ["Daily sync"]
    assert utc(polled) > datetime.now(UTC) + timedelta(minutes=30)  # not the poll's turn
    assert eventually(lambda: channels_in(engine)[0].messages >= 1)

    # A new item the same way.
    boundary = since()
    emu.add_item(email, "review", Subject="Review", Start=stamp(start + timedelta(hours=2)),
                 End=stamp(start + timedelta(hours=3)))
    changed_since(client, start, boundary, "Review")


@pytest.mark.parametrize("end", ["drop", "expire"])
def test_a_subscription_the_server_dropped_is_made_again(
        server: GatewayServer, emu: ExchangeEmulator, engine: Engine,
        callback: CallbackServer, end: str) -> None:
    email = new_user(emu, "Passw0rd!")
    start = tomorrow_at(14)
    _app, client = link(server, emu, callback, email, "Passw0rd!")
    eventually(lambda: not profile_row(engine, email).initial_sync_required)
    (first,) = eventually(lambda: emu.subscriptions.of(email), timeout=30)
    (row,) = eventually(lambda: channels_in(engine), timeout=30)

    # The mailbox server restarts (or the subscription times out) and forgets it; an
    # edit made meanwhile is not lost: the new subscription's first sync brings it.
    getattr(emu.subscriptions, end)(email)
    boundary = since()
    emu.add_item(email, "gap", Subject="Made while dropped", Start=stamp(start),
                 End=stamp(start + timedelta(hours=1)))
    (again,) = eventually(lambda: [s for s in emu.subscriptions.of(email)
                                   if s.subscription_id != first.subscription_id], timeout=30)
    assert [s.subscription_id for s in emu.subscriptions.of(email)] == [again.subscription_id]
    (renewed,) = eventually(lambda: [c for c in channels_in(engine) if c.id != row.id],
                            timeout=30)
    assert push.decode(renewed.resource_id)[0] == again.subscription_id
    changed_since(client, start, boundary, "Made while dropped")

    # And the new subscription carries changes.
    boundary = since()
    emu.edit(email, "gap", Subject="Edited after")
    changed_since(client, start, boundary, "Edited after")
    assert profile_row(engine, email).connected


def test_a_password_changed_upstream_disconnects_and_relinks(
        server: GatewayServer, emu: ExchangeEmulator, engine: Engine,
        callback: CallbackServer) -> None:
    email = new_user(emu, "First-pw1")
    start = tomorrow_at(11)
    app, client = link(server, emu, callback, email, "First-pw1")
    assert app.secret is not None
    hook = Receiver(app.client_id, app.secret).start()
    try:
        client.create_notification_channel(hook.url)
        eventually(lambda: not profile_row(engine, email).initial_sync_required)
        eventually(lambda: emu.subscriptions.of(email), timeout=30)
        (profile,) = client.list_profiles()
        assert profile["profile_connected"] is True

        # The user changes their password in the directory; an edit makes Calgate look
        # (the subscription's read is refused as well), and EWS answers 401.
        emu.change_password(email, "Second-pw2")
        emu.add_item(email, "away", Subject="Added while away", Start=stamp(start),
                     End=stamp(start + timedelta(hours=1)))
        gone = eventually(lambda: hook.of_type("profile_disconnected"), timeout=60)
        assert [g.notification["profile_id"] for g in gone] == [profile["profile_id"]]
        assert all(g.cronofy_valid and g.calgate_valid for g in gone)
        # (GET answers may be served from the read cache for a moment: wait for it.)
        (shown,) = eventually(lambda: [p for p in client.list_profiles()
                                       if not p["profile_connected"]])
        relink_url = shown["profile_relink_url"]
        assert relink_url.startswith(f"{server.url}/oauth/relink/")

        # The relink page, with the old password (refused), then the new one.
        assert linking.REFUSED in relink(relink_url, email, "First-pw1", emu)
        assert client.list_profiles()[0]["profile_connected"] is False
        assert "Calendar reconnected" in relink(relink_url, email, "Second-pw2", emu)
        (back,) = eventually(lambda: [p for p in client.list_profiles()
                                      if p["profile_connected"]])
        assert back["profile_id"] == profile["profile_id"]
        assert "profile_relink_url" not in back
        eventually(lambda: "Added while away" in summaries(client, start), timeout=60)
    finally:
        hook.stop()


def relink(url: str, email: str, password: str, emu: ExchangeEmulator) -> str:
    """Open the relink URL in a fresh browser and submit its Exchange form; the page it
    ends on, as text (HTML-escaped as the browser got it)."""
    with httpx.Client(follow_redirects=True, timeout=30, trust_env=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert email in page.text  # whose account this link reconnects
        token = consent_http.CSRF.search(page.text)
        assert token is not None, page.text
        fields = {"email": email, "password": password, "ews_url": emu.ews_url()}
        answer = browser.post(f"{page.url}/connect",
                              data={"csrf_token": token.group(1), **fields})
        assert answer.status_code == 200, answer.text
        return html.unescape(answer.text)
