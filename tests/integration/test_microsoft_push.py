"""Microsoft push through Graph subscriptions, end to end: a real uvicorn serving Calgate on
loopback (its worker in the same process), the Microsoft emulator POSTing the validation
handshake, change and lifecycle notifications to it, and the API read as a client app would.

Polling is set to an hour, so anything that arrives sooner came through a notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, select, update

from gateway.domain.upstream_apps import UpstreamApps
from gateway.persistence.tables import calendars, push_channels
from gateway.secrets.local import LocalSecretStore
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.signin import sign_in
from tests.support.e2e_server import GatewayServer, RegisteredApp
from tests.support.oauth import Pkce, csrf, decide, exchange, start
from tests.support.receiver import Receiver
from tests.support.server_db import channels_in, profile_row, server_engine, utc
from tests.support.waiting import eventually

APP_ID, APP_SECRET = "push-entra-app", "push-entra-secret"
SCOPE = "read_write"
PROVIDER = "office365"  # Microsoft 365
PERSONAL = "live_connect"  # Outlook.com


@pytest.fixture(scope="module")
def emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as emulator:
        yield emulator


@pytest.fixture
def server(tmp_path: Path, db_url: str, emu: MicrosoftEmulator) -> Iterator[GatewayServer]:
    """Calgate with push on (loopback http: push is asked for explicitly) and hourly polls;
    the deployment's Entra app for Microsoft 365."""
    with GatewayServer(tmp_path, db_url, env={
            "CALGATE_PROVIDER_PUSH": "on", "CALGATE_SYNC_INTERVAL": "3600",
            "CALGATE_OFFICE365_AUTHORITY_BASE": emu.base_url,
            "CALGATE_OFFICE365_GRAPH_BASE": emu.base_url,
            "CALGATE_OFFICE365_CA_BUNDLE": str(emu.ca_path),
            "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1"}) as running:
        emu.register_app(APP_ID, APP_SECRET, "Calgate Push Tests", [
            f"{running.url}/oauth/callback/{name}" for name in (PROVIDER, PERSONAL)])
        store = LocalSecretStore(running.data_dir / "secrets")
        for name in (PROVIDER, PERSONAL):
            UpstreamApps(store).configure(name, APP_ID, APP_SECRET)
        store.close()
        yield running


@pytest.fixture
def api(server: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, follow_redirects=False, trust_env=False) as client:
        yield client


@pytest.fixture
def browser(emu: MicrosoftEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as client:
        yield client


@pytest.fixture
def engine(server: GatewayServer) -> Iterator[Engine]:
    """The server's database, read from the test (state, never a substitute for the API)."""
    with server_engine(server.database_url) as made:
        yield made


def link(api: httpx.Client, server: GatewayServer, emu: MicrosoftEmulator,
         browser: httpx.Client, email: str, provider: str = PROVIDER
         ) -> tuple[RegisteredApp, dict[str, str]]:
    """A client app, and a Microsoft mailbox linked through Calgate's screens and the
    emulator's consent page; returns the app and the API headers."""
    app = server.register_client(name="Mentor Hub", redirect_uris=["https://app.example/cb"],
                                 scopes=SCOPE.split())
    pkce = Pkce()
    flow = start(api, app, scope=SCOPE, pkce=pkce)  # type: ignore[arg-type]
    flow = flow.removeprefix(server.url)
    page = api.get(flow)
    assert api.post(f"{flow}/provider", data={"csrf_token": csrf(page.text),
                                               "provider": provider}).status_code == 303
    upstream = api.get(f"{flow}/upstream")
    assert upstream.status_code == 303, upstream.text
    query = sign_in(browser, upstream.headers["location"], email)
    back = api.get(f"/oauth/callback/{provider}", params=query)
    assert back.status_code == 303, back.text
    token = exchange(api, app, decide(api, flow)["code"], pkce)  # type: ignore[arg-type]
    assert token["_status"] == 200, token
    return app, {"Authorization": f"Bearer {token['access_token']}"}


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def weekly_series(subject: str, first: datetime, count: int = 4) -> dict[str, Any]:
    return {"subject": subject, "start": graph_time(first),
            "end": graph_time(first + timedelta(hours=1)),
            "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                       "daysOfWeek": [first.strftime("%A").lower()]},
                           "range": {"type": "numbered",
                                     "startDate": first.date().isoformat(),
                                     "numberOfOccurrences": count}}}


def subscriptions_of(emu: MicrosoftEmulator, calendar: str) -> list[dict[str, Any]]:
    return [s for s in emu.subscriptions() if s["resource"] == f"/me/calendars/{calendar}/events"]


def read(api: httpx.Client, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    answer = api.get("/v1/events", headers=headers, params={"tzid": "Etc/UTC", **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["events"])


def stamp() -> str:
    """A last_modified boundary: now, to the second (the API's precision), minus one."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def settled(engine: Engine, email: str) -> Any:
    """The profile's row once no sync runs and none is due before the hourly poll."""
    row = profile_row(engine, email)
    later = datetime.now(UTC) + timedelta(minutes=30)
    return row if row.sync_lease_until is None and utc(row.next_sync_at) > later else None


def renewals(emu: MicrosoftEmulator, email: str) -> int:
    """Subscriptions of this mailbox extended (PATCH) so far."""
    return emu.count("subscriptions.renew", status=200, user=email)


def full_rounds(emu: MicrosoftEmulator, email: str) -> int:
    """calendarView/delta rounds started afresh (a window, not a deltaLink)."""
    return sum(1 for r in emu.requests if r.kind == "delta" and r.user == email.lower()
               and "startDateTime" in r.query)


@pytest.mark.parametrize(("provider", "personal"), [(PROVIDER, False), (PERSONAL, True)],
                         ids=["microsoft365", "outlook.com"])
def test_a_graph_subscription_carries_changes_and_lifecycle_events(
        server, api, emu, browser, engine, provider, personal):
    """On a Microsoft 365 mailbox and on an Outlook.com one (``live_connect``: its own
    webhook path, the same lifecycle handling)."""
    domain = "outlook.example" if personal else "contoso.example"
    email = f"push-{uuid.uuid4().hex[:8]}@{domain}"
    calendar = emu.add_user(email, personal=personal)
    first = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    master = emu.add_event(email, weekly_series("Standup", first))
    _app, headers = link(api, server, emu, browser, email, provider)

    # The first sync, then a subscription whose handshake Calgate answered (Graph creates
    # none otherwise).
    eventually(lambda: not profile_row(engine, email).initial_sync_required)
    (sub,) = eventually(lambda: subscriptions_of(emu, calendar))
    assert sub["clientState"] and sub["notificationUrl"].startswith(
        f"{server.url}/webhooks/{provider}?")
    channel = parse_qs(urlsplit(sub["notificationUrl"]).query)["channel"][0]
    # Graph holds the subscription before Calgate has its answer and stores the channel.
    (stored,) = eventually(lambda: channels_in(engine))
    assert (stored.id, stored.resource_id) == (channel, sub["id"])
    assert sub["clientState"] not in (stored.token_hash, "")  # only its digest is kept
    assert sorted(e["summary"] for e in read(api, headers)) == ["Standup"] * 4

    # Renamed "in Outlook": the notification brings it, long before the hourly poll.
    since = stamp()
    emu.update_event(email, master["id"], {"subject": "Daily sync"})
    renamed = eventually(lambda: [e for e in read(api, headers, last_modified=since)
                                  if e["summary"] == "Daily sync"], timeout=10)
    assert len(renamed) == 4
    assert sorted(e["summary"] for e in read(api, headers)) == ["Daily sync"] * 4
    mine = [d for d in emu.deliveries() if d.url.startswith(f"{server.url}/")]
    assert mine and all(d.status == 200 for d in mine), mine

    # A notification with a wrong clientState is refused, and nothing becomes due.
    before = eventually(lambda: settled(engine, email))
    forged = {"value": [{"subscriptionId": sub["id"], "clientState": "not-the-token",
                         "changeType": "updated", "resource": f"Users/x/Events/{master['id']}",
                         "tenantId": "t", "resourceData": {"id": master["id"]}}]}
    answer = api.post(f"/webhooks/{provider}", params={"channel": channel}, json=forged)
    assert answer.status_code == 404
    after = profile_row(engine, email)
    assert (after.next_sync_at, after.sync_requested_at) == (before.next_sync_at,
                                                             before.sync_requested_at)

    # reauthorizationRequired: the same subscription, renewed (PATCH), none created.
    created, renews = emu.count("subscriptions.create"), renewals(emu, email)
    emu.lifecycle(sub["id"], "reauthorizationRequired")
    eventually(lambda: renewals(emu, email) == renews + 1)
    (renewed,) = subscriptions_of(emu, calendar)
    assert renewed["id"] == sub["id"]
    assert renewed["expirationDateTime"] >= sub["expirationDateTime"]
    assert emu.count("subscriptions.create") == created
    # Graph's ~3 days from the renewal (the notice had made the channel end at once).
    (kept,) = eventually(lambda: [c for c in channels_in(engine)
                                  if utc(c.expires_at) > datetime.now(UTC) + timedelta(days=2)])
    assert (kept.id, kept.resource_id) == (channel, sub["id"])

    # Its end drawing near (a day left, as after two days): renewed again, in place.
    with engine.begin() as conn:
        conn.execute(update(push_channels).values(
            expires_at=datetime.now(UTC) + timedelta(hours=1)))
    eventually(lambda: [c for c in channels_in(engine)
                        if utc(c.expires_at) > datetime.now(UTC) + timedelta(days=2)])
    assert renewals(emu, email) == renews + 2
    assert [s["id"] for s in subscriptions_of(emu, calendar)] == [sub["id"]]
    assert emu.count("subscriptions.create") == created

    # missed: one full resync, and no duplicate.
    full = full_rounds(emu, email)
    emu.lifecycle(renewed["id"], "missed")
    eventually(lambda: full_rounds(emu, email) == full + 1)
    eventually(lambda: profile_row(engine, email).sync_lease_until is None)
    assert sorted(e["summary"] for e in read(api, headers)) == ["Daily sync"] * 4
    assert full_rounds(emu, email) == full + 1

    # subscriptionRemoved (Graph dropped it): a new one is made, and it carries changes.
    emu.lifecycle(renewed["id"], "subscriptionRemoved")
    (again,) = eventually(lambda: subscriptions_of(emu, calendar))
    assert again["id"] != sub["id"]
    eventually(lambda: [c.resource_id for c in channels_in(engine)] == [again["id"]])
    since = stamp()
    emu.update_event(email, master["id"], {"subject": "Weekly sync"})
    eventually(lambda: len([e for e in read(api, headers, last_modified=since)
                            if e["summary"] == "Weekly sync"]) == 4, timeout=10)

    # Revoking the profile deletes its subscription at Microsoft.
    profile_id = profile_row(engine, email).id
    revoked = api.post(f"/v1/profiles/{profile_id}/revoke", headers=headers)
    assert revoked.status_code in (200, 202, 204), revoked.text
    assert subscriptions_of(emu, calendar) == []


def test_invalid_grant_sends_profile_disconnected(server, api, emu, browser, engine):
    """On an Outlook.com account (the other entry, its own webhook path)."""
    email = f"gone-{uuid.uuid4().hex[:8]}@outlook.example"
    calendar = emu.add_user(email, personal=True)
    app, headers = link(api, server, emu, browser, email, PERSONAL)
    assert app.secret is not None
    hook = Receiver(app.client_id, app.secret).start()
    try:
        made = api.post("/v1/channels", headers=headers, json={"callback_url": hook.url})
        assert made.status_code == 200, made.text
        (sub,) = eventually(lambda: subscriptions_of(emu, calendar))
        assert sub["notificationUrl"].startswith(f"{server.url}/webhooks/{PERSONAL}?")
        eventually(lambda: channels_in(engine))  # stored: notifications are now ours
        eventually(lambda: hook.of_type("profile_initial_sync_completed"))

        # The user withdrew consent: refreshing answers invalid_grant (AADSTS700082). A
        # change notification makes the worker sync, which finds the grant gone.
        emu.fail_refresh(email, 700082)
        emu.expire_access_tokens(email)
        emu.add_event(email, {"subject": "After the grant ended",
                              "start": graph_time(datetime.now(UTC) + timedelta(days=1)),
                              "end": graph_time(datetime.now(UTC) + timedelta(days=1,
                                                                              hours=1))})
        gone = eventually(lambda: hook.of_type("profile_disconnected"), timeout=60)
        assert [g.notification["profile_id"] for g in gone] == [
            profile_row(engine, email).id]
        assert all(g.cronofy_valid and g.calgate_valid for g in gone)
        assert profile_row(engine, email).connected is False
    finally:
        hook.stop()


def cursor_of(engine: Engine, calendar_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(calendars.c.cursor).where(
            calendars.c.id == calendar_id)).scalar_one()


def test_missed_while_a_sync_runs_still_ends_in_a_full_resync(
        server, api, emu, browser, engine):
    """``missed`` clears the cursor; a sync already running read the old one. Held at
    Graph's answer to its delta round, it ends after the notification: it must not save its
    own cursor over the cleared one, so the next sync is a full one."""
    email = f"race-{uuid.uuid4().hex[:8]}@contoso.example"
    calendar = emu.add_user(email)
    _app, headers = link(api, server, emu, browser, email)
    eventually(lambda: not profile_row(engine, email).initial_sync_required)
    (sub,) = eventually(lambda: subscriptions_of(emu, calendar))
    (channel,) = eventually(lambda: channels_in(engine))
    eventually(lambda: settled(engine, email))
    assert cursor_of(engine, channel.calendar_id) is not None
    full = full_rounds(emu, email)

    # A change notification starts an incremental sync, held at its delta answer.
    hold = emu.hold_answer(email, "delta", query="$deltatoken")
    try:
        at = datetime.now(UTC) + timedelta(days=1)
        emu.add_event(email, {"subject": "During the race", "start": graph_time(at),
                              "end": graph_time(at + timedelta(hours=1))})
        eventually(hold.reached.is_set)
        emu.lifecycle(sub["id"], "missed")
        eventually(lambda: cursor_of(engine, channel.calendar_id) is None)
    finally:
        hold.release()

    # The held round ends, then the calendar is synced in full (the notification asked for
    # a sync while the round ran, so it is due at once).
    eventually(lambda: full_rounds(emu, email) == full + 1)
    eventually(lambda: settled(engine, email))
    assert full_rounds(emu, email) == full + 1
    assert cursor_of(engine, channel.calendar_id) is not None
    assert [e["summary"] for e in read(api, headers)] == ["During the race"]
