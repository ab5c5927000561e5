"""Availability through the official SDKs, unmodified, against a running Calgate.

pycronofy's ``availability`` (access token; it sends ``buffer: {}`` and the legacy
``available_periods``) and the Node SDK's ``availability`` (with an access token, and with
the app's client secret for two of its accounts) get Cronofy's answers; a slot booked
through ``upsert_event`` is gone from the very next answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pycronofy
import pytest

from tests.support import consent_http
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.memory_connector import PASSWORD
from tests.support.node_sdk import NodeSdk
from tests.support.waiting import eventually

SCOPE = "read_account list_calendars read_free_busy create_event delete_event"
DAY = datetime(2031, 5, 6, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def app(server: GatewayServer, callback: CallbackServer) -> RegisteredApp:
    return server.register_client(name="Booking App", redirect_uris=[callback.url],
                                  scopes=SCOPE.split(), legacy_no_pkce=True)


def linked(server: GatewayServer, app: RegisteredApp, callback: CallbackServer,
           username: str) -> pycronofy.Client:
    """A pycronofy client holding the tokens of a freshly linked memory account."""
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    got = consent_http.consent_over_http(
        client.user_auth_link(callback.url, scope=SCOPE, state="s"), server.url, callback,
        "memory", {"username": username, "password": PASSWORD}, expect=username)
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)
    return client


def test_pycronofy_availability_and_a_booking_vanishing(
        server: GatewayServer, app: RegisteredApp, callback: CallbackServer) -> None:
    client = linked(server, app, callback, "ada@example.org")
    sub = client.userinfo()["sub"]
    calendar_id = eventually(client.list_calendars)[0]["calendar_id"]
    ask = {"participants": [{"members": [sub]}], "required_duration": 60,
           "available_periods": [{"start": at(9), "end": at(13)}]}
    periods = eventually(lambda: client.availability(**ask))  # once the first sync is in
    assert periods == [{"start": z(at(9)), "end": z(at(13)), "participants": [{"sub": sub}]}]

    client.upsert_event(calendar_id, {"event_id": "booking-1", "summary": "Booked",
                                      "start": at(10), "end": at(11)})
    assert client.availability(**ask) == [
        {"start": z(at(9)), "end": z(at(10)), "participants": [{"sub": sub}]},
        {"start": z(at(11)), "end": z(at(13)), "participants": [{"sub": sub}]}]
    slots = client.availability(**ask, response_format="slots", start_interval=30,
                                buffer={"after": {"minutes": 30}})
    assert [s["start"] for s in slots] == [z(at(11)), z(at(12))]
    assert client.availability(**ask, max_results=1) == [
        {"start": z(at(9)), "end": z(at(10)), "participants": [{"sub": sub}]}]


def test_node_sdk_availability_by_token_and_by_client_secret(
        server: GatewayServer, app: RegisteredApp, callback: CallbackServer) -> None:
    ada = linked(server, app, callback, "ada.node@example.org")
    bob = linked(server, app, callback, "bob.node@example.org")
    subs = [ada.userinfo()["sub"], bob.userinfo()["sub"]]
    calendar_id = eventually(bob.list_calendars)[0]["calendar_id"]
    bob.upsert_event(calendar_id, {"event_id": "b1", "summary": "Busy",
                                   "start": at(9), "end": at(10)})
    options = {"participants": [{"members": [{"sub": s} for s in subs], "required": "all"}],
               "required_duration": {"minutes": 60},
               "query_periods": [{"start": z(at(9)), "end": z(at(12))}],
               "response_format": "overlapping_slots", "start_interval": {"minutes": 30}}
    by_secret = NodeSdk(server.url, {"client_id": app.client_id,
                                     "access_token": app.secret})

    def answered() -> dict | None:
        body = by_secret.call("availability", options).unwrap()
        return body if body["available_slots"] else None

    body = eventually(answered)  # once both first syncs are in
    assert [s["start"] for s in body["available_slots"]] == [
        z(at(10)), z(at(10.5)), z(at(11))]
    assert body["available_slots"][0]["participants"] == [{"sub": s} for s in subs]

    own = NodeSdk(server.url, {"client_id": app.client_id,
                               "access_token": ada.auth.access_token})
    mine = own.call("availability", options | {
        "participants": [{"members": [{"sub": subs[0]}]}], "response_format": "periods"})
    assert mine.unwrap() == {"available_periods": [
        {"start": z(at(9)), "end": z(at(12)), "participants": [{"sub": subs[0]}]}]}
    theirs = own.call("availability", options)
    assert not theirs.ok and theirs.status == 422
