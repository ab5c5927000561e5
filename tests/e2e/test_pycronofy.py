"""The official Cronofy Python SDK (pycronofy 2.1.1), unmodified, against a real Calgate server.

pycronofy sends no PKCE, ``Authorization: Bearer None`` and JSON bodies on /oauth/token, and
``provider_name=`` / ``avoid_linking=False`` on the authorize link: all of it must just work.
The consent flow is driven over plain HTTP, as a browser without JavaScript would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pycronofy
import pytest
from pycronofy.exceptions import PyCronofyRequestError

from tests.support import consent_http
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.memory_connector import PASSWORD
from tests.support.waiting import eventually

SCOPE = "read_account list_calendars read_events create_event delete_event"
STATE = "pycronofy state & é/+="
USERNAME = "sam@example.org"


@pytest.fixture
def app(server: GatewayServer, callback: CallbackServer) -> RegisteredApp:
    return server.register_client(name="Legacy Cronofy App", redirect_uris=[callback.url],
                                  scopes=SCOPE.split(), legacy_no_pkce=True)


def sdk_client(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    """A pycronofy client re-pointed at the gateway without touching pycronofy.settings."""
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def consent_over_http(link: str, server: GatewayServer, callback: CallbackServer) -> dict[str, str]:
    """Follow the authorize link and the consent forms; return the query the app receives."""
    return consent_http.consent_over_http(link, server.url, callback, "memory", {
        "username": USERNAME, "password": PASSWORD}, expect=USERNAME)


def test_pycronofy_full_lifecycle(server: GatewayServer, app: RegisteredApp,
                                  callback: CallbackServer) -> None:
    client = sdk_client(server, app)
    link = client.user_auth_link(callback.url, scope=SCOPE, state=STATE)
    assert link.startswith(f"{server.url}/oauth/authorize?")
    query = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert query["provider_name"] == "" and query["avoid_linking"] == "False"

    got = consent_over_http(link, server, callback)
    assert got["state"] == STATE
    assert got["iss"] == server.url

    tokens = client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["token_expiration"]

    refreshed = client.refresh_authorization()
    assert refreshed["access_token"] != tokens["access_token"]
    # A confidential client keeps its refresh token, as on Cronofy (API.md s2.2).
    assert refreshed["refresh_token"] == tokens["refresh_token"]
    assert client.auth.access_token == refreshed["access_token"]

    info = client.userinfo()
    account = client.account()
    assert account["account_id"] == info["sub"]
    assert account["account_id"].startswith("acc_")
    profiles = client.list_profiles()
    assert len(profiles) == 1, profiles
    assert profiles[0]["profile_name"] == USERNAME
    assert profiles[0]["profile_id"].startswith("pro_")

    old_access, old_refresh = client.auth.access_token, client.auth.refresh_token
    client.revoke_authorization()
    assert client.auth.access_token is None  # pycronofy forgets its tokens...

    with pytest.raises(PyCronofyRequestError) as raised:  # ...and sends "Bearer None"
        client.account()
    assert raised.value.response.status_code == 401

    client.auth.update(access_token=old_access, refresh_token=old_refresh)
    with pytest.raises(PyCronofyRequestError) as raised:  # the revoked token is dead too
        client.account()
    assert raised.value.response.status_code == 401
    assert raised.value.response.json() == {"error": "invalid_token"}
    with pytest.raises(PyCronofyRequestError) as raised:  # so is its refresh token
        client.refresh_authorization()
    assert raised.value.response.status_code == 400
    assert raised.value.response.json()["error"] == "invalid_grant"


def test_pycronofy_code_for_another_redirect_uri_is_refused(
        server: GatewayServer, app: RegisteredApp, callback: CallbackServer) -> None:
    client = sdk_client(server, app)
    got = consent_over_http(client.user_auth_link(callback.url, scope="read_account"),
                            server, callback)
    assert "state" not in got  # pycronofy sends state= (empty): nothing to echo
    with pytest.raises(PyCronofyRequestError) as raised:
        client.get_authorization_from_code(got["code"], redirect_uri=callback.url + "/other")
    assert raised.value.response.status_code == 400
    assert raised.value.response.json()["error"] == "invalid_grant"


def test_pycronofy_upsert_event_updates_only_what_it_sends(
        server: GatewayServer, app: RegisteredApp, callback: CallbackServer) -> None:
    """pycronofy's upsert_event, as an app updates a booking: a second call with only the
    summary, the times and one rejection keeps the rest (Cronofy's semantics)."""
    client = sdk_client(server, app)
    got = consent_over_http(client.user_auth_link(callback.url, scope=SCOPE, state="s"),
                            server, callback)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    calendar_id = eventually(client.list_calendars)[0]["calendar_id"]  # the first sync
    start, end = datetime(2031, 5, 6, 9, tzinfo=UTC), datetime(2031, 5, 6, 10, tzinfo=UTC)
    client.upsert_event(calendar_id, {
        "event_id": "booking-7", "summary": "Mentoring", "description": "Agenda",
        "start": start, "end": end, "url": "https://app.example/b/7",
        "location": {"description": "Room 4", "lat": "51.5", "long": "-0.12"},
        "transparency": "transparent", "reminders": [{"minutes": 30}, {"minutes": 10}],
        "attendees": {"invite": [{"email": "a@example.org"}, {"email": "b@example.org"}]}})
    client.upsert_event(calendar_id, {
        "event_id": "booking-7", "summary": "Mentoring (moved)", "start": start,
        "end": end + timedelta(minutes=30),
        "attendees": {"reject": [{"email": "b@example.org"}]}})

    def applied() -> dict[str, object] | None:
        found = list(client.read_events(calendar_ids=(calendar_id,), only_managed=True,
                                        include_geo=True, from_date="2031-05-01",
                                        to_date="2031-05-10"))
        done = [e for e in found if e["summary"] == "Mentoring (moved)"
                and "calgate_write" not in e]
        return done[0] if done else None

    event = eventually(applied)
    assert event["description"] == "Agenda" and event["transparency"] == "transparent"
    assert event["location"] == {"description": "Room 4", "lat": "51.5", "long": "-0.12"}
    assert event["url"] == "https://app.example/b/7"
    assert [a["email"] for a in event["attendees"]] == ["a@example.org"]
    assert [r["minutes"] for r in event["reminders"]] == [30, 10]
    assert event["end"] == "2031-05-06T10:30:00Z"
