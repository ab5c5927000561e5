"""Issue 14's gateway journeys, on one emulator and one Calgate process.

In headless Chromium a user links an Exchange mailbox by email and password alone: Calgate's
Autodiscover finds the server (a POX POST to ``https://contoso.test/autodiscover/…``) and
NTLM signs in. ``contoso.test`` resolves, for the gateway's outbound guard only, to a
loopback address of this module's own where the emulator listens on 443
(``CALGATE_TEST_HOSTS``, read by tests/support/e2e_app.py; the guard still checks the
address against the allowed networks). The emulator's private CA is the operator's
``CALGATE_EXCHANGE_CA_BUNDLE``. Then the unmodified pycronofy SDK lists calendars, upserts
with attendees, reads, updates, deletes and reads free/busy; the emulator holds exactly one
item per upsert, even when the first create's answer was lost. A weekly series made "in
Outlook", with one occurrence moved and one cancelled, reads back as Cronofy shows it.

Each way linking can fail shows its own words on the form (driven over HTTP, as a browser
without JavaScript would), and nothing is stored: no account, profile or calendar row, and
no new secret."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest
import sqlalchemy as sa
from markupsafe import escape

from gateway.domain.upstream_apps import UpstreamApps
from gateway.persistence import tables
from gateway.secrets.local import LocalSecretStore
from providers.exchange import linking
from tests.emulators.exchange import ExchangeEmulator
from tests.support import consent_http
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"
ADA = "ada@contoso.test"
PASSWORD = "Passw0rd!"
# This module's own loopback addresses, one pair per xdist worker (gw0, gw1, ...: each
# worker that runs some of these tests starts its own emulator on 443 of its address).
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
ADDRESS = f"127.0.14.{2 * _WORKER + 1}"  # the emulator, on 443
NOWHERE = f"127.0.14.{2 * _WORKER + 2}"  # nothing listens here: an unreachable server
HOSTS = {"contoso.test": ADDRESS, "autodiscover.contoso.test": ADDRESS,
         "wrongname.contoso.test": ADDRESS,  # not on the emulator's certificate
         "nowhere.test": NOWHERE, "autodiscover.nowhere.test": NOWHERE}


@pytest.fixture(scope="module")
def emu() -> Iterator[ExchangeEmulator]:
    try:  # Autodiscover asks https://contoso.test/ on 443
        running = ExchangeEmulator(names=("contoso.test", "autodiscover.contoso.test"),
                                   bind=(ADDRESS, 443)).start()
    except OSError as exc:
        pytest.skip(f"cannot listen on {ADDRESS}:443 here ({exc})")
    running.add_user(ADA, PASSWORD)
    running.add_user("lou@contoso.test", PASSWORD, locked=True)
    running.add_user("carol@contoso.test", PASSWORD, ews_enabled=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emu: ExchangeEmulator
           ) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path_factory.mktemp("calgate-exchange"), env={
            "CALGATE_EXCHANGE_CA_BUNDLE": str(emu.ca.pem_path),
            "CALGATE_TEST_HOSTS": ",".join(f"{n}={a}" for n, a in HOSTS.items()),
            "CALGATE_PROVIDER_PUSH": "off"}) as running:
        # Microsoft 365 is offered, so an Exchange Online mailbox can be sent there.
        store = LocalSecretStore(running.data_dir / "secrets")
        UpstreamApps(store).configure("office365", "entra-app-id", "entra-app-secret")
        store.close()
        yield running


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def items(emu: ExchangeEmulator, subject: str) -> list[Any]:
    return [i for i in emu.items(ADA) if i.text("Subject") == subject]


def window(start: datetime, days: int = 5) -> dict[str, str]:
    return {"from_date": (start - timedelta(days=1)).date().isoformat(),
            "to_date": (start + timedelta(days=days)).date().isoformat(), "tzid": "Etc/UTC"}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def link_in_chromium(browser: Any, client: pycronofy.Client, callback: CallbackServer,
                     shots: Any) -> dict[str, str]:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(client.user_auth_link(callback.url, scope=FULL, state="ex"))
        page.click("#provider-exchange")
        page.fill("#field-email", ADA)  # email and password alone: no server, no login
        page.fill("#field-password", PASSWORD)
        shots(page, "connect-exchange")
        page.click("#connect")
        page.wait_for_selector("#allow")
        shots(page, "consent")
        assert ADA in (page.text_content("#linked-account") or "")
        # Nothing to revoke at Exchange: the review step says so (the entry's access_note).
        assert linking.NOTHING_TO_REVOKE in (page.text_content("#remove-access") or "")
        page.click("#allow")
        page.wait_for_load_state()
    finally:
        context.close()
    assert len(callback.queries) == 1, callback.queries
    return callback.queries[0]


def test_an_exchange_mailbox_linked_in_chromium_by_email_and_password(
        browser: Any, server: GatewayServer, emu: ExchangeEmulator,
        callback: CallbackServer, shots: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    emu.add_item(ADA, "dentist", Subject="Dentist", Start=stamp(start),
                 End=stamp(start + timedelta(hours=1)), LegacyFreeBusyStatus="Busy")
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    client = sdk(server, app)
    handshakes = emu.auth.handshakes
    got = link_in_chromium(browser, client, callback, shots)
    assert emu.auth.handshakes > handshakes  # NTLM signed in (Autodiscover, then EWS)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)

    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    (calendar,) = [c for c in client.list_calendars() if c["calendar_primary"]]
    assert calendar["provider_name"] == "exchange" and not calendar["calendar_readonly"]
    work = calendar["calendar_id"]
    assert [e["summary"] for e in client.read_events(calendar_ids=(work,), **window(start))
            ] == ["Dentist"]

    # The first create's answer is lost after Exchange made the item: the retry finds it
    # by its extended property instead of making a second one.
    emu.drop_next("CreateItem")
    event = {"event_id": "session-1", "summary": "Mentoring session",
             "description": "Bring questions", "start": start + timedelta(days=1),
             "end": start + timedelta(days=1, hours=1),
             "attendees": {"invite": [{"email": "mentee@example.org",
                                       "display_name": "Mentee"}]}}
    client.upsert_event(work, event)
    eventually(lambda: emu.operations.count("CreateItem") >= 1 and items(
        emu, "Mentoring session") and emu.operations.count("FindItem") >= 2)
    read = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(work,), include_managed=True, **window(start))
        if e["summary"] == "Mentoring session"])
    (made,) = items(emu, "Mentoring session")
    assert made.text("Body") == "Bring questions"
    attendees = made.fields["RequiredAttendees"]
    assert [a.findtext(".//{*}EmailAddress") for a in attendees] == ["mentee@example.org"]
    assert read[0]["description"] == "Bring questions"
    assert "mentee@example.org" in [a["email"] for a in read[0].get("attendees", [])]

    client.upsert_event(work, {**event, "summary": "Moved session"})
    eventually(lambda: items(emu, "Moved session"))
    assert items(emu, "Mentoring session") == []
    eventually(lambda: [e for e in client.read_events(
        calendar_ids=(work,), include_managed=True, **window(start))
        if e["summary"] == "Moved session"])

    blocks = list(client.read_free_busy(calendar_ids=(work,), **window(start)))
    busy = sorted(b["start"] for b in blocks)
    assert busy == [stamp(start), stamp(start + timedelta(days=1))]
    assert all("summary" not in b for b in blocks)

    client.delete_event(work, "session-1")
    eventually(lambda: not items(emu, "Moved session"))
    # Exactly one item per upsert: the Dentist is all that is left.
    assert [i.text("Subject") for i in emu.items(ADA)] == ["Dentist"]
    assert emu.operations.count("CreateItem") == 1  # the dropped answer; no second create

    _a_series_reads_back_as_cronofy_shows_it(client, emu, work, start)


def _a_series_reads_back_as_cronofy_shows_it(client: pycronofy.Client,
                                             emu: ExchangeEmulator, work: str,
                                             start: datetime) -> None:
    """A weekly series made in Outlook after linking, one occurrence moved and one
    cancelled: GET /v1/events lists the moved one at its new time, not the cancelled one,
    and the others as they are, each a recurring event of the series."""
    first = start + timedelta(days=3)
    weeks = [first + timedelta(weeks=n) for n in range(4)]
    emu.add_series(ADA, "standup", stamp(first), stamp(first + timedelta(minutes=30)),
                   "UTC", Subject="Standup")
    moved_to = weeks[1] + timedelta(days=1, hours=5)
    emu.move_occurrence(ADA, "standup", weeks[1], moved_to, moved_to + timedelta(minutes=30))
    emu.cancel_occurrence(ADA, "standup", weeks[2])

    def standups() -> list[dict[str, Any]]:
        found = [e for e in client.read_events(calendar_ids=(work,), **window(first, 23))
                 if e["summary"] == "Standup"]
        return sorted(found, key=lambda e: e["start"])

    read = eventually(lambda: len(standups()) == 3 and standups())
    assert [(e["start"], e["end"]) for e in read] == [
        (stamp(w), stamp(w + timedelta(minutes=30))) for w in (weeks[0], moved_to, weeks[3])]
    assert all(e["recurring"] for e in read)
    assert len({e["event_uid"] for e in read}) == 3


def _snapshot(server: GatewayServer) -> tuple[Any, ...]:
    """Which account, profile and calendar rows exist (by key: the journey's own profile
    keeps syncing meanwhile), and every secret's path."""
    engine = sa.create_engine(server.database_url)
    try:
        with engine.connect() as db:
            rows = tuple(frozenset(db.execute(sa.select(*table.primary_key.columns)).all())
                         for table in (tables.accounts, tables.profiles, tables.calendars))
    finally:
        engine.dispose()
    store = LocalSecretStore(server.data_dir / "secrets")
    try:
        return (*rows, tuple(store.list("")))
    finally:
        store.close()


@pytest.mark.parametrize(("fields", "words"), [
    ({"email": ADA, "password": "wrong"}, linking.REFUSED),
    ({"email": "lou@contoso.test", "password": PASSWORD}, linking.LOCKED),
    ({"email": "dan@nowhere.test", "password": PASSWORD}, linking.UNREACHABLE),
    ({"email": ADA, "password": PASSWORD,
      "ews_url": "https://wrongname.contoso.test/EWS/Exchange.asmx"}, linking.CERTIFICATE),
    ({"email": "carol@contoso.test", "password": PASSWORD}, linking.EWS_DISABLED),
    ({"email": "eve@contoso.onmicrosoft.com", "password": PASSWORD,
      "ews_url": "https://outlook.office365.com/EWS/Exchange.asmx"}, linking.ONLINE),
], ids=["wrong-password", "locked", "unreachable", "certificate", "ews-disabled", "online"])
def test_each_failure_has_its_own_words_on_the_form_and_nothing_is_stored(
        server: GatewayServer, emu: ExchangeEmulator, callback: CallbackServer,
        fields: dict[str, str], words: str) -> None:
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    link = sdk(server, app).user_auth_link(callback.url, scope=FULL, state="ex")
    before = _snapshot(server)
    page, switched = consent_http.connect_refused(link, server.url, "exchange", fields)
    assert str(escape(words)) in page, page
    # The form keeps what was typed, bar the password.
    assert f'value="{escape(fields["email"])}"' in page
    assert f'value="{escape(fields["password"])}"' not in page
    # Only the Online mailbox is offered the way it can be linked: Microsoft 365's step.
    if words == linking.ONLINE:
        assert switched is not None and "Connect Microsoft 365" in switched, switched
    else:
        assert switched is None and 'id="switch-provider"' not in page
    assert _snapshot(server) == before
    assert callback.queries == []
