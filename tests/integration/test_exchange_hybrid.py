"""Exchange Server with hybrid modern authentication, behind the gateway: a mailbox linked
through the consent screen by signing in at Microsoft (the identity emulator, msal, PKCE,
state and nonce), then synced and written through the API with EWS bearer tokens for the
server's own resource (``https://<ews-host>/EWS.AccessAsUser.All``). The Exchange emulator
offers Bearer only, and accepts a token only when the identity emulator issued it for that
permission and that mailbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from gateway.app import provider_options
from gateway.persistence.tables import profiles
from gateway.services.connectors import register_defaults
from providers.exchange.hybrid import ews_scope
from tests.conftest import ISSUER
from tests.emulators.exchange import ExchangeEmulator
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.signin import sign_in
from tests.integration.test_caldav_sync_api import sync
from tests.support import aio
from tests.support.oauth import Pkce, csrf, decide, exchange, make_client, start

APP_ID, APP_SECRET = "hybrid-entra-app", "hybrid-entra-secret"
MAILBOX = "hana@contoso.example"
PROVIDER = "exchange_hybrid"


@pytest.fixture(scope="module")
def ms() -> Iterator[MicrosoftEmulator]:
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app(APP_ID, APP_SECRET, "Calgate Hybrid Tests",
                              [f"{ISSUER}/oauth/callback/{PROVIDER}"])
        emulator.add_user(MAILBOX)
        yield emulator


@pytest.fixture  # one per database the test runs on: each starts from an empty mailbox
def ews(ms: MicrosoftEmulator) -> Iterator[ExchangeEmulator]:
    holder: list[ExchangeEmulator] = []

    def verify(token: str) -> str | None:
        # What Exchange checks in a hybrid token: issued by the tenant's identity platform,
        # still valid, for the EWS permission of this server (its URL), for a mailbox here.
        found = ms.identity.bearer(token)
        wanted = ews_scope(holder[0].ews_url("localhost")).lower()
        if found is None or wanted not in {s.lower() for s in found.scopes}:
            return None
        return found.user

    emulator = ExchangeEmulator(schemes=("Bearer",), bearer=verify).start()
    holder.append(emulator)
    emulator.add_user(MAILBOX, "no password is ever used")
    yield emulator
    emulator.stop()


@pytest.fixture
def settings(settings, ms, ews):
    return settings.replace(office365_authority_base=ms.base_url,
                            office365_ca_bundle=str(ms.ca_path),
                            exchange_ca_bundle=ews.ca.pem_path,
                            exchange_oauth_ews_url=ews.ews_url("localhost"),
                            outbound_allow_networks="127.0.0.0/8,::1/128")


@pytest.fixture
def configured(gateway):
    gateway.apps.configure(PROVIDER, APP_ID, APP_SECRET)
    register_defaults(gateway.connectors, provider_options(gateway.settings), gateway.apps)
    return gateway


def test_a_hybrid_mailbox_links_with_microsoft_sign_in_and_syncs_with_bearer_tokens(
        configured, ms, ews, http) -> None:
    gateway = configured
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    ews.add_item(MAILBOX, "review", Subject="Quarterly review",
                 Start=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 End=(at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    client = make_client(gateway, scopes="read_write")
    pkce = Pkce()
    flow = start(http, client, scope="read_write", pkce=pkce)
    page = http.get(flow)
    assert f'value="{PROVIDER}"' in page.text
    r = http.post(f"{flow}/provider", data={"csrf_token": csrf(page.text),
                                             "provider": PROVIDER})
    assert r.status_code == 303, r.text
    r = http.get(f"{flow}/upstream")
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    # One permission is asked for: EWS as the user, on the operator's server.
    scopes = parse_qs(urlsplit(url).query)["scope"][0].split()
    assert ews_scope(ews.ews_url("localhost")) in scopes
    assert not [s for s in scopes if "graph.microsoft.com" in s]
    with httpx.Client(verify=ms.ca.client_context(), trust_env=False) as browser:
        back = http.get(f"/oauth/callback/{PROVIDER}", params=sign_in(browser, url, MAILBOX))
    assert back.status_code == 303, back.text
    review = http.get(flow).text
    assert MAILBOX in review and 'id="allow"' in review, review
    token = exchange(http, client, decide(http, flow)["code"], pkce)
    assert token["_status"] == 200, token
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    with gateway.engine.connect() as conn:
        profile_id = str(conn.execute(select(profiles.c.id).where(
            profiles.c.profile_name == MAILBOX)).scalar_one())
    before = ews.auth.bearer_requests
    sync(gateway, profile_id)
    assert ews.auth.bearer_requests > before and ews.auth.handshakes == 0
    calendars = http.get("/v1/calendars", headers=headers).json()["calendars"]
    (primary,) = [c for c in calendars if c["calendar_primary"]]
    assert primary["provider_name"] == PROVIDER and not primary["calendar_readonly"]
    window = {"from": (at - timedelta(days=1)).date().isoformat(),
              "to": (at + timedelta(days=2)).date().isoformat(), "tzid": "Etc/UTC"}
    read = http.get("/v1/events", headers=headers, params=window).json()["events"]
    assert [e["summary"] for e in read] == ["Quarterly review"]

    # A write through the API reaches Exchange with a bearer token too.
    body = {"event_id": "hybrid-1", "summary": "Mentoring",
            "start": (at + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (at + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    path = f"/v1/calendars/{primary['calendar_id']}/events"
    assert http.post(path, headers=headers, json=body).status_code == 202
    outbox = gateway.worker.outbox
    for managed_id in outbox.due():
        aio.run(outbox.apply(managed_id))
    assert [i.text("Subject") for i in ews.items(MAILBOX)] == ["Quarterly review",
                                                               "Mentoring"]
    assert ews.auth.handshakes == 0  # never a password, never NTLM

    # Microsoft ends the access token early (Calgate's cache still holds it): Exchange
    # refuses it once, the provider refreshes it and the sync goes on; no relink.
    ms.expire_access_tokens(MAILBOX)
    refused = ews.auth.bearer_refused
    ews.add_item(MAILBOX, "later", Subject="Later meeting",
                 Start=(at + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 End=(at + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sync(gateway, profile_id)
    assert ews.auth.bearer_refused == refused + 1
    read = http.get("/v1/events", headers=headers, params=window).json()["events"]
    assert "Later meeting" in [e["summary"] for e in read]

    # Push: the pull subscriptions are made and read with bearer tokens too, and a change
    # at Exchange makes the profile due for sync without waiting for the poll.
    assert aio.run(gateway.push.maintain(profile_id)) >= 1
    pull = gateway.worker.pull
    assert pull is not None
    assert aio.run(pull.read(profile_id)) is False  # nothing changed yet
    ews.add_item(MAILBOX, "pushed", Subject="Pushed meeting",
                 Start=(at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 End=(at + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert aio.run(pull.read(profile_id)) is True
    assert ews.auth.handshakes == 0
