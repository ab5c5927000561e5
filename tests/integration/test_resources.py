"""GET /v1/resources (pycronofy ``resources()``) through accounts linked on the consent
screen against the Google and Microsoft emulators: the rooms of a Workspace (Admin SDK,
paged by nextPageToken) and of a Microsoft 365 tenant (Graph places, paged by nextLink);
the rooms permission asked upstream only when the app asked for ``read_resources``; 403
without the scope, and when the upstream refuses its directory; no rooms for providers
without a directory."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pycronofy
import pytest

from gateway.app import create_app, provider_options
from gateway.services.connectors import register_defaults
from providers.google import oauth as google_oauth
from providers.microsoft.scopes import PLACE_READ_ALL
from tests.conftest import ISSUER
from tests.emulators.google import GoogleEmulator
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.signin import sign_in
from tests.support.oauth import Pkce, authorize, csrf, decide, exchange, make_client, start
from tests.support.served import sdk, serving

ROOMS = "read_account list_calendars read_resources"
NO_ROOMS = "read_account list_calendars read_events"
G_APP, G_SECRET = "gw-rooms-cid", "gw-rooms-secret"
M_APP, M_SECRET = "gw-rooms-entra", "gw-rooms-entra-secret"


@pytest.fixture(scope="module")
def google():
    with GoogleEmulator.running() as emulator:
        emulator.register_app(G_APP, G_SECRET, "Calgate Rooms",
                              [f"{ISSUER}/oauth/callback/google"])
        yield emulator


@pytest.fixture(scope="module")
def microsoft():
    with MicrosoftEmulator.running() as emulator:
        emulator.register_app(M_APP, M_SECRET, "Calgate Rooms", [
            f"{ISSUER}/oauth/callback/office365", f"{ISSUER}/oauth/callback/live_connect"])
        yield emulator


@pytest.fixture
def settings(settings, google, microsoft):
    return settings.replace(google_url=google.base_url,
                            office365_authority_base=microsoft.base_url,
                            office365_graph_base=microsoft.base_url,
                            office365_ca_bundle=str(microsoft.ca_path))


@pytest.fixture
def configured(gateway):
    """The deployment's upstream apps and the registry's connectors (the gateway fixture
    registers only the in-memory test connector)."""
    gateway.apps.configure("google", G_APP, G_SECRET)
    for name in ("office365", "live_connect"):
        gateway.apps.configure(name, M_APP, M_SECRET)
    register_defaults(gateway.connectors, provider_options(gateway.settings), gateway.apps)
    return gateway


@pytest.fixture
def served(configured) -> Iterator[str]:
    with serving(create_app(configured)) as url:
        yield url


def to_upstream(http, client, provider: str, scope: str) -> tuple[str, str, Pkce]:
    """Start a flow, choose ``provider``, follow the link to its sign-in page."""
    pkce = Pkce()
    flow = start(http, client, scope=scope, pkce=pkce)
    page = http.get(flow)
    r = http.post(f"{flow}/provider", data={"csrf_token": csrf(page.text),
                                             "provider": provider})
    assert r.status_code == 303, r.text
    r = http.get(f"{flow}/upstream")
    assert r.status_code == 303, r.text
    return flow, r.headers["location"], pkce


def google_consent(emu, url: str, email: str) -> dict[str, str]:
    """What the user does on Google's page: sign in as ``email``, allow all."""
    with httpx.Client(follow_redirects=False, trust_env=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        txn = re.search(r'name="txn" value="([^"]+)"', page.text)[1]
        offered = re.findall(r'name="scope" value="([^"]+)" checked', page.text)
        form = [("txn", txn), ("email", email), ("decision", "allow")]
        answer = browser.post(f"{emu.base_url}/o/oauth2/v2/auth/decision",
                              content=urlencode(form + [("scope", s) for s in offered]),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def finish(http, client, provider: str, flow: str, pkce: Pkce, back: dict[str, str]) -> str:
    """Back at Calgate: the review page, Allow, the code exchanged; the access token."""
    r = http.get(f"/oauth/callback/{provider}", params=back)
    assert r.status_code == 303, r.text
    review = http.get(flow).text
    assert 'id="allow"' in review, review
    token = exchange(http, client, decide(http, flow)["code"], pkce)
    assert token["_status"] == 200, token
    return str(token["access_token"])


def scopes_asked(url: str) -> set[str]:
    return set(parse_qs(urlsplit(url).query)["scope"][0].split())


def recorded_authorize_scopes(emu, path: str) -> set[str]:
    """The scope of the last authorize request the emulator received."""
    asked = [r for r in emu.requests if r.path == path]
    assert asked, f"no request to {path}"
    return set(asked[-1].query["scope"][0].split())


def rooms_of(served: str, client, access_token: str) -> list[dict[str, str]]:
    return sdk(served, client.client_id, client.secret, access_token=access_token).resources()


# -- Google -------------------------------------------------------------------------------

def test_a_workspace_administrator_lists_every_room_through_pycronofy(
        configured, google, http, served):
    domain = f"rooms-{uuid.uuid4().hex[:8]}.example"
    email = google.add_user(f"admin@{domain}")
    google.make_admin(email)
    for n in range(520):  # more than one page of 500
        google.add_room(domain, f"room-{n:03d}@resource.calendar.google.com", f"Room {n:03d}",
                        capacity=n % 12 + 2)
    client = make_client(configured, scopes=ROOMS)
    flow, url, pkce = to_upstream(http, client, "google", ROOMS)
    assert google_oauth.RESOURCES_READONLY in scopes_asked(url)
    token = finish(http, client, "google", flow, pkce, google_consent(google, url, email))
    google.clear_requests()
    rooms = rooms_of(served, client, token)
    assert len(rooms) == 520
    assert rooms[0] == {"email": "room-000@resource.calendar.google.com", "name": "Room 000"}
    assert rooms[-1] == {"email": "room-519@resource.calendar.google.com", "name": "Room 519"}
    assert google.count("resources.calendars.list") == 2  # nextPageToken followed


def test_google_is_not_asked_for_rooms_unless_the_app_asked(configured, google, http, served):
    domain = f"rooms-{uuid.uuid4().hex[:8]}.example"
    email = google.add_user(f"user@{domain}")
    google.make_admin(email)
    google.add_room(domain, "board@resource.calendar.google.com", "Board room")
    client = make_client(configured, scopes=NO_ROOMS)
    flow, url, pkce = to_upstream(http, client, "google", NO_ROOMS)
    token = finish(http, client, "google", flow, pkce, google_consent(google, url, email))
    asked = recorded_authorize_scopes(google, "/o/oauth2/v2/auth")
    assert asked == set(google_oauth.upstream_scopes(  # read_events carries read_free_busy
        ["read_account", "list_calendars", "read_events", "read_free_busy"]))
    assert not any("admin.directory" in s for s in asked)
    google.clear_requests()
    with pytest.raises(pycronofy.exceptions.PyCronofyRequestError) as refused:
        rooms_of(served, client, token)
    assert refused.value.response.status_code == 403
    assert refused.value.response.json() == {"error": "insufficient_scope",
                                             "required_scope": "read_resources"}
    assert google.count("resources.calendars.list") == 0  # refused before Google


def test_google_refuses_its_directory_to_a_user_who_is_not_an_administrator(
        configured, google, http):
    domain = f"rooms-{uuid.uuid4().hex[:8]}.example"
    email = google.add_user(f"staff@{domain}")
    google.add_room(domain, "board@resource.calendar.google.com", "Board room")
    client = make_client(configured, scopes=ROOMS)
    flow, url, pkce = to_upstream(http, client, "google", ROOMS)
    token = finish(http, client, "google", flow, pkce, google_consent(google, url, email))
    r = http.get("/v1/resources", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "resources_forbidden"
    assert r.json()["profile_id"].startswith("pro_")


# -- Microsoft ----------------------------------------------------------------------------

def link_microsoft(http, microsoft, client, provider: str, scope: str, email: str) -> str:
    flow, url, pkce = to_upstream(http, client, provider, scope)
    with httpx.Client(verify=microsoft.ca.client_context(), trust_env=False) as browser:
        back = sign_in(browser, url, email)
    return finish(http, client, provider, flow, pkce, back)


def test_a_microsoft_365_tenant_lists_its_rooms_through_pycronofy(
        configured, microsoft, http, served):
    tenant = str(uuid.uuid4())
    email = f"ms-{uuid.uuid4().hex[:8]}@contoso.example"
    microsoft.add_user(email, tenant=tenant)
    microsoft.grant_admin_consent(PLACE_READ_ALL, tenant)
    for n in range(230):  # three pages of Graph's 100
        microsoft.add_room(f"room{n:03d}@contoso.example", f"Room {n:03d}", tenant=tenant)
    client = make_client(configured, scopes=ROOMS)
    token = link_microsoft(http, microsoft, client, "office365", ROOMS, email)
    assert PLACE_READ_ALL in recorded_authorize_scopes_ms(microsoft)
    microsoft.clear_requests()
    rooms = rooms_of(served, client, token)
    assert [r["email"] for r in rooms] == [f"room{n:03d}@contoso.example" for n in range(230)]
    assert rooms[7] == {"email": "room007@contoso.example", "name": "Room 007"}
    assert microsoft.count("places.rooms") == 3  # @odata.nextLink followed


def test_without_admin_consent_the_tenant_refuses_and_nothing_links(
        configured, microsoft, http):
    tenant = str(uuid.uuid4())
    email = f"ms-{uuid.uuid4().hex[:8]}@fabrikam.example"
    microsoft.add_user(email, tenant=tenant)
    client = make_client(configured, scopes=ROOMS)
    flow, url, _pkce = to_upstream(http, client, "office365", ROOMS)
    with httpx.Client(verify=microsoft.ca.client_context(), trust_env=False) as browser:
        back = sign_in(browser, url, email)
    assert "AADSTS90094" in back.get("error_description", ""), back
    page = http.get("/oauth/callback/office365", params=back)
    assert page.status_code == 200 and "Grant admin consent" in page.text, page.text
    assert 'id="allow"' not in http.get(flow).text


def test_microsoft_is_asked_for_places_only_when_the_app_asked(
        configured, microsoft, http, served):
    work = f"ms-{uuid.uuid4().hex[:8]}@contoso.example"
    microsoft.add_user(work)
    client = make_client(configured, scopes=NO_ROOMS)
    token = link_microsoft(http, microsoft, client, "office365", NO_ROOMS, work)
    assert PLACE_READ_ALL not in recorded_authorize_scopes_ms(microsoft)
    with pytest.raises(pycronofy.exceptions.PyCronofyRequestError) as refused:
        rooms_of(served, client, token)
    assert refused.value.response.status_code == 403
    # Outlook.com has no rooms: the permission is dropped even when the app asks for it,
    # and the account lists none.
    personal = f"ms-{uuid.uuid4().hex[:8]}@outlook.example"
    microsoft.add_user(personal, personal=True)
    client = make_client(configured, scopes=ROOMS)
    token = link_microsoft(http, microsoft, client, "live_connect", ROOMS, personal)
    assert PLACE_READ_ALL not in recorded_authorize_scopes_ms(microsoft)
    microsoft.clear_requests()
    assert rooms_of(served, client, token) == []
    assert microsoft.count("places.rooms") == 0


def recorded_authorize_scopes_ms(emu) -> set[str]:
    asked = [r for r in emu.requests if r.kind == "authorize"]
    assert asked, "no authorize request"
    return set(asked[-1].query["scope"].split())


# -- providers without rooms --------------------------------------------------------------

def test_an_account_without_a_room_directory_lists_none(gateway, http, served):
    client = make_client(gateway, scopes=ROOMS)
    pkce = Pkce()
    token = exchange(http, client, authorize(http, client, scope=ROOMS, pkce=pkce), pkce)
    assert rooms_of(served, client, str(token["access_token"])) == []
