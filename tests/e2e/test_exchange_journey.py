"""Issue 14's gateway journey: an Exchange mailbox linked through Calgate's consent form over
plain HTTP (email, password and the EWS address; NTLM against the emulator over HTTPS with
its private CA named by ``CALGATE_EXCHANGE_CA_BUNDLE``); then the unmodified pycronofy SDK
lists calendars, upserts with attendees, reads, updates, deletes and reads free/busy. The
emulator holds exactly one item per upsert, even when the first create's answer was lost:
the retry finds the item by the extended property carrying the event_id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest

from tests.emulators.exchange import ExchangeEmulator
from tests.support import consent_http
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"
ADA = "ada@contoso.test"
PASSWORD = "Passw0rd!"


@pytest.fixture(scope="module")
def emu() -> Iterator[ExchangeEmulator]:
    running = ExchangeEmulator().start()
    running.add_user(ADA, PASSWORD)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emu: ExchangeEmulator
           ) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path_factory.mktemp("calgate-exchange"), env={
            "CALGATE_EXCHANGE_CA_BUNDLE": str(emu.ca.pem_path),
            "CALGATE_PROVIDER_PUSH": "off"}) as running:
        yield running


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def items(emu: ExchangeEmulator, subject: str) -> list[Any]:
    return [i for i in emu.items(ADA) if i.text("Subject") == subject]


def window(start: datetime) -> dict[str, str]:
    return {"from_date": (start - timedelta(days=1)).date().isoformat(),
            "to_date": (start + timedelta(days=5)).date().isoformat(), "tzid": "Etc/UTC"}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_exchange_mailbox_through_the_form_and_pycronofy(
        server: GatewayServer, emu: ExchangeEmulator, callback: CallbackServer) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    emu.add_item(ADA, "dentist", Subject="Dentist", Start=stamp(start),
                 End=stamp(start + timedelta(hours=1)), LegacyFreeBusyStatus="Busy")
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    client = sdk(server, app)
    got = consent_http.consent_over_http(
        client.user_auth_link(callback.url, scope=FULL, state="ex"), server.url, callback,
        "exchange", {"email": ADA, "password": PASSWORD, "ews_url": emu.ews_url(),
                     "login": "CONTOSO\\ada"}, expect=ADA)
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
