"""Issue 12's journey: a Microsoft 365 account and an Outlook.com account linked through
Calgate's consent screen and the Microsoft emulator's own consent page in Chromium; then the
unmodified pycronofy SDK lists calendars, upserts (with attendees and a Teams meeting),
reads, updates, deletes and reads free/busy. The emulator holds exactly one event per
upsert, even when the answer to the first create was lost (``drop_answers``): the retry
carries the same ``transactionId``.

The emulator serves HTTPS with a throwaway ``trustme`` CA. Calgate trusts it through
``CALGATE_OFFICE365_CA_BUNDLE``; the browser context is told to accept certificate errors
(Playwright's ``ignore_https_errors``), which only the emulator's origin can raise: Calgate
and the client app's callback are plain http on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest

from gateway.domain.upstream_apps import UpstreamApps
from gateway.secrets.local import LocalSecretStore
from tests.emulators.microsoft import MicrosoftEmulator
from tests.integration.test_microsoft_gateway import REMOVE_AT
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"
WORK = "ada@contoso.example"
HOME = "bob@outlook.example"
APP_ID, APP_SECRET = "calgate-entra-app", "calgate-entra-secret"
PROVIDERS = ("office365", "live_connect")


@pytest.fixture(scope="module")
def emu() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emu: MicrosoftEmulator
           ) -> Iterator[GatewayServer]:
    """Calgate pointed at the emulator, with the deployment's Entra app for both entries."""
    with GatewayServer(tmp_path_factory.mktemp("calgate-microsoft"), env={
            "CALGATE_OFFICE365_AUTHORITY_BASE": emu.base_url,
            "CALGATE_OFFICE365_GRAPH_BASE": emu.base_url,
            "CALGATE_OFFICE365_CA_BUNDLE": str(emu.ca_path),
            "CALGATE_PROVIDER_PUSH": "off"}) as running:
        emu.register_app(APP_ID, APP_SECRET, "Calgate Journey", [
            f"{running.url}/oauth/callback/{name}" for name in PROVIDERS])
        store = LocalSecretStore(running.data_dir / "secrets")
        for name in PROVIDERS:
            UpstreamApps(store).configure(name, APP_ID, APP_SECRET)
        store.close()
        yield running


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def link(context: Any, server: GatewayServer, app: RegisteredApp, callback: CallbackServer,
         provider: str, email: str, shots: Any) -> pycronofy.Client:
    """Through Calgate's screens and the emulator's Microsoft page, in one browser (whose
    cookie links the second account to the first one's subject); an authorised SDK."""
    page = context.new_page()
    try:
        page.goto(sdk(server, app).user_auth_link(callback.url, scope=FULL, state=provider))
        page.click(f"#provider-{provider}")
        shots(page, f"connect-{provider}")
        page.click("#connect")
        page.wait_for_selector("#scopes")  # the emulator's Microsoft consent page
        assert page.url.startswith("https://")  # the emulator; Calgate is plain http
        page.fill('input[name="login"]', email)
        shots(page, f"{provider}-consent")
        page.click('button[value="accept"]')
        page.wait_for_selector("#allow")  # back on Calgate's review step
        shots(page, f"{provider}-review")
        assert email in page.content()
        # Microsoft keeps its grant whatever Calgate does: the page says where to remove it.
        assert REMOVE_AT[provider] in (page.text_content("#remove-access") or "")
        page.click("#allow")
        page.wait_for_load_state()
    finally:
        page.close()
    query = callback.queries[-1]
    assert query.get("state") == provider and "code" in query, callback.queries
    client = sdk(server, app)
    client.get_authorization_from_code(query["code"], redirect_uri=callback.url)
    return client


def window(start: datetime) -> dict[str, str]:
    return {"from_date": (start - timedelta(days=1)).date().isoformat(),
            "to_date": (start + timedelta(days=5)).date().isoformat(), "tzid": "Etc/UTC"}


def primary(client: pycronofy.Client, provider: str, email: str) -> str:
    """The profile's default calendar, once its initial sync has run."""
    profiles = client.userinfo()["cronofy.data"]["profiles"]
    (profile,) = [p for p in profiles if p["profile_name"] == email]
    assert profile["provider_name"] == provider
    eventually(lambda: not next(p for p in client.userinfo()["cronofy.data"]["profiles"]
                                if p["profile_name"] == email)["profile_initial_sync_required"])
    (calendar,) = [c for c in client.list_calendars()
                   if c["profile_name"] == email and c["calendar_primary"]]
    assert calendar["provider_name"] == provider and not calendar["calendar_readonly"]
    return str(calendar["calendar_id"])


def upstream(emu: MicrosoftEmulator, email: str, subject: str) -> list[dict[str, Any]]:
    return [e for e in emu.events(email) if e.get("subject") == subject]


def test_m365_and_outlook_accounts_through_consent_and_pycronofy(
        browser, server, emu, callback, shots):
    emu.add_user(WORK, "Ada Lovelace")
    emu.add_user(HOME, "Bob Home", personal=True)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    emu.add_event(WORK, {"subject": "Dentist", "start": {
        "dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}, "end": {
        "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        "timeZone": "UTC"}})
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    context = browser.new_context(java_script_enabled=False, ignore_https_errors=True)
    try:
        link(context, server, app, callback, "office365", WORK, shots)
        client = link(context, server, app, callback, "live_connect", HOME, shots)
    finally:
        context.close()
    work = primary(client, "office365", WORK)
    home = primary(client, "live_connect", HOME)
    assert [e["summary"] for e in client.read_events(calendar_ids=(work,), **window(start))
            ] == ["Dentist"]

    # The first create's answer is lost after Graph applied it: the retry, with the same
    # transactionId, gets the same event back.
    emu.drop_answers(WORK)
    event = {"event_id": "session-1", "summary": "Mentoring session",
             "description": "Bring questions", "start": start + timedelta(days=1),
             "end": start + timedelta(days=1, hours=1),
             "attendees": {"invite": [{"email": "mentee@example.org",
                                       "display_name": "Mentee"}]},
             "conferencing": {"profile_id": "default"}}
    client.upsert_event(work, event)
    eventually(lambda: emu.count("events.create", user=WORK) >= 2)
    (made,) = upstream(emu, WORK, "Mentoring session")
    assert made["body"]["content"] == "Bring questions"
    assert [a["emailAddress"]["address"] for a in made["attendees"]] == ["mentee@example.org"]
    assert made["isOnlineMeeting"] is True
    assert made["onlineMeetingProvider"] == "teamsForBusiness"
    join_url = made["onlineMeeting"]["joinUrl"]
    assert emu.count("events.create", user=WORK) == 2  # the dropped answer, then the retry
    # The read shows the Teams link once the outbox has written Graph's answer to the mirror.
    read = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(work,), include_managed=True, **window(start))
        if e["summary"] == "Mentoring session" and "conferencing" in e])
    assert read[0]["description"] == "Bring questions"
    assert read[0]["conferencing"]["join_url"] == join_url
    assert [a["email"] for a in read[0]["attendees"]
            if a["email"] != WORK] == ["mentee@example.org"]

    client.upsert_event(work, {**event, "summary": "Moved session"})
    eventually(lambda: upstream(emu, WORK, "Moved session"))
    assert upstream(emu, WORK, "Mentoring session") == []
    client.delete_event(work, "session-1")
    eventually(lambda: not upstream(emu, WORK, "Moved session"))

    # Outlook.com: one event per upsert too (a personal account has no Teams for business,
    # so conferencing is left out rather than refused).
    emu.drop_answers(HOME)
    client.upsert_event(home, {**event, "event_id": "home-1", "summary": "Home session"})
    eventually(lambda: emu.count("events.create", user=HOME) >= 2)
    (home_event,) = upstream(emu, HOME, "Home session")
    assert home_event["isOnlineMeeting"] is False
    assert emu.count("events.create", user=HOME) == 2

    # Free/busy over both accounts, from the mirror: times only.
    blocks = list(client.read_free_busy(calendar_ids=(work, home), **window(start)))
    busy = sorted((b["calendar_id"], b["start"]) for b in blocks)
    assert busy == sorted([(work, start.strftime("%Y-%m-%dT%H:%M:%SZ")),
                           (home, (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))])
    assert all("summary" not in b for b in blocks)

    # Exactly one event per upsert in Microsoft: the Dentist, and the home session.
    assert [e["subject"] for e in emu.events(WORK)] == ["Dentist"]
    assert [e["subject"] for e in emu.events(HOME)] == ["Home session"]
