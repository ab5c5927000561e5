"""The official Cronofy Node SDK (npm ``cronofy`` 3.8.4), unmodified, against a running Calgate.

The app links a real Radicale account through the consent forms, then uses only the Node SDK:
token exchange and refresh, identity, calendars, event writes and reads over several pages,
free/busy, channels (the verification notification checked with the SDK's own
``hmacValid``), batch, bulk delete, and revocation. The SDK is re-pointed as its README says
(``client.urls.api``); its quirks (``Bearer undefined`` on token calls, its config leaking
into request bodies, query strings appended to ``next_page``) must all just work.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support import consent_http
from tests.support.consent_http import CSRF
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.node_sdk import NodeSdk
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

SCOPE = ("read_account list_calendars read_events read_free_busy create_event delete_event "
         "create_calendar")


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    env = {"CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1"}  # the receiver: http on loopback
    with GatewayServer(tmp_path_factory.mktemp("calgate-node"), env=env) as running:
        yield running


@pytest.fixture
def radicale() -> Iterator[tuple[RadicaleServer, DavOwner, str]]:
    with RadicaleServer(users={"alice": "wonderland"}) as server:
        owner = DavOwner(server.url, "alice", "wonderland")
        yield server, owner, owner.make_calendar("Work")
        owner.close()


def link(server: GatewayServer, app: RegisteredApp, callback: CallbackServer,
         dav_url: str) -> str:
    """The consent forms, as a browser without JavaScript; returns the code."""
    query = urlencode({"response_type": "code", "client_id": app.client_id,
                       "redirect_uri": callback.url, "scope": SCOPE, "state": "node"})
    got = consent_http.consent_over_http(
        f"{server.url}/oauth/authorize?{query}", server.url, callback, "caldav",
        {"server_url": dav_url, "username": "alice", "password": "wonderland"})
    assert got["state"] == "node"
    return got["code"]


def test_node_sdk_against_calgate(node_server: GatewayServer, callback: CallbackServer,
                                  radicale: tuple[RadicaleServer, DavOwner, str],
                                  tmp_path: Path) -> None:
    dav, owner, path = radicale
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=8, minute=0, second=0,
                                                             microsecond=0)
    for i in range(103):  # more than one page of 100
        owner.add(path, f"seed-{i}", f"Seed {i}", start + timedelta(days=i % 20, hours=i % 7),
                  timedelta(minutes=30))
    app = node_server.register_client(name="Node App", redirect_uris=[callback.url],
                                      scopes=SCOPE.split(), legacy_no_pkce=True)
    sdk = NodeSdk(node_server.url, {"client_id": app.client_id,
                                    "client_secret": app.secret})

    token = sdk.call("requestAccessToken", {"code": link(node_server, app, callback, dav.url),
                                            "redirect_uri": callback.url}).unwrap()
    assert token["token_type"] == "bearer" and token["sub"].startswith("acc_")
    assert token["linking_profile"]["profile_name"] == "alice"
    assert sdk.config["access_token"] == token["access_token"]  # the SDK keeps it itself

    account = sdk.call("accountInformation").unwrap()["account"]
    assert account["account_id"] == token["sub"]
    (profile,) = sdk.call("profileInformation").unwrap()["profiles"]
    assert profile["profile_id"] == token["linking_profile"]["profile_id"]
    eventually(lambda: not sdk.call("userInfo").unwrap()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    info = sdk.call("userInfo").unwrap()
    assert info["sub"] == token["sub"] and info["cronofy.type"] == "account"

    calendars = sdk.call("listCalendars").unwrap()["calendars"]
    (work,) = [c for c in calendars if c["calendar_name"] == "Work"]
    calendar_id = work["calendar_id"]
    created = sdk.call("createCalendar", {"profile_id": profile["profile_id"],
                                          "name": "Node Made", "color": "#49BED8"}).unwrap()
    assert created["calendar"]["calendar_name"] == "Node Made"

    window = {"tzid": "Etc/UTC", "from": (start - timedelta(days=1)).date().isoformat(),
              "to": (start + timedelta(days=30)).date().isoformat(),
              "calendar_ids": [calendar_id]}
    first = sdk.call("readEvents", window).unwrap()
    assert first["pages"]["total"] == 2 and len(first["events"]) == 100
    # Node appends its leftover options as a query string to next_page: ignored.
    second = sdk.call("readEvents", {"next_page": first["pages"]["next_page"],
                                     "tzid": "Etc/UTC"}).unwrap()
    assert second["pages"]["current"] == 2 and len(second["events"]) == 3
    seeds = {e["summary"] for e in first["events"] + second["events"]}
    assert seeds == {f"Seed {i}" for i in range(103)}

    receiver = Receiver(app.client_id, app.secret).start()
    try:
        channel = sdk.call("createNotificationChannel",
                           {"callback_url": receiver.url}).unwrap()["channel"]
        assert channel["channel_id"].startswith("chn_")
        listed = sdk.call("listNotificationChannels").unwrap()["channels"]
        assert [c["channel_id"] for c in listed] == [channel["channel_id"]]
        verification = eventually(lambda: receiver.of_type("verification"))[0]
        assert sdk.call("hmacValid", {
            "hmac": verification.headers["Cronofy-HMAC-SHA256"],
            "body": verification.body.decode()}).value is True
        assert sdk.call("hmacValid", {"hmac": verification.headers["Cronofy-HMAC-SHA256"],
                                      "body": verification.body.decode() + " "}).value is False
        assert sdk.call("deleteNotificationChannel",
                        {"channel_id": channel["channel_id"]}).ok
        assert sdk.call("listNotificationChannels").unwrap()["channels"] == []
    finally:
        receiver.stop()

    at = start + timedelta(days=1, hours=10)
    event = {"calendar_id": calendar_id, "event_id": "node-1", "summary": "Node session",
             "description": "Made by the Node SDK", "start": at.isoformat().replace(
                 "+00:00", "Z"), "end": (at + timedelta(hours=1)).isoformat().replace(
                 "+00:00", "Z"), "tzid": "Europe/London"}
    assert sdk.call("createEvent", event).ok
    managed = {**window, "include_managed": True}

    def mine(event_id: str) -> list[dict[str, Any]]:
        return [e for e in sdk.call("readEvents", managed).unwrap()["events"]
                if e.get("event_id") == event_id]

    assert eventually(lambda: mine("node-1"))[0]["summary"] == "Node session"
    assert eventually(lambda: _find(owner, path, "Node session"))

    blocks = sdk.call("freeBusy", {**window, "include_managed": True}).unwrap()
    assert blocks["pages"]["total"] >= 2 and blocks["free_busy"]
    assert all("summary" not in b for b in blocks["free_busy"])

    batch = sdk.call("batch", {"batch": [
        {"method": "POST", "relative_url": f"/v1/calendars/{calendar_id}/events",
         "data": {**{k: v for k, v in event.items() if k != "calendar_id"},
                  "event_id": "node-2", "summary": "Node batch"}},
        {"method": "DELETE", "relative_url": f"/v1/calendars/{calendar_id}/events",
         "data": {"event_id": "node-1"}}]}).unwrap()
    assert [entry["status"] for entry in batch["batch"]] == [202, 202]
    eventually(lambda: _find(owner, path, "Node batch") and not _find(owner, path, "Node session"))

    assert sdk.call("deleteEvent", {"calendar_id": calendar_id, "event_id": "node-2"}).ok
    eventually(lambda: not _find(owner, path, "Node batch"))
    assert sdk.call("createEvent", {**event, "event_id": "node-3", "summary": "Node bulk"}).ok
    eventually(lambda: _find(owner, path, "Node bulk"))
    assert sdk.call("bulkDeleteEvents", {"calendar_ids": [calendar_id]}).ok
    eventually(lambda: not _find(owner, path, "Node bulk"))
    assert _find(owner, path, "Seed 7")  # the bulk delete touched only the app's own events

    bad = sdk.call("createEvent", {"calendar_id": calendar_id, "event_id": "x",
                                   "start": event["start"], "end": event["end"]})
    assert bad.status == 422 and "summary" in bad.body["errors"]

    old_access = sdk.config["access_token"]
    refreshed = sdk.call("refreshAccessToken").unwrap()
    assert refreshed["access_token"] != old_access
    assert sdk.config["access_token"] == refreshed["access_token"]
    assert sdk.call("accountInformation").ok

    assert sdk.call("revokeAuthorization").ok
    assert "access_token" not in sdk.config  # the SDK forgets its tokens
    dead = NodeSdk(node_server.url, {"access_token": refreshed["access_token"]})
    assert dead.call("accountInformation").status == 401


def test_node_sdk_profile_revocation(node_server: GatewayServer, callback: CallbackServer,
                                     radicale: tuple[RadicaleServer, DavOwner, str]) -> None:
    dav, _owner, _path = radicale
    app = node_server.register_client(name="Node App", redirect_uris=[callback.url],
                                      scopes=SCOPE.split(), legacy_no_pkce=True)
    sdk = NodeSdk(node_server.url, {"client_id": app.client_id,
                                    "client_secret": app.secret})
    token = sdk.call("requestAccessToken", {"code": link(node_server, app, callback, dav.url),
                                            "redirect_uri": callback.url}).unwrap()
    profile_id = token["linking_profile"]["profile_id"]
    assert sdk.call("revokeProfileAuthorization", {"profile_id": profile_id}).ok
    # The account's only profile: revoking it ends the authorization (README, "Scopes").
    assert eventually(lambda: sdk.call("profileInformation").status == 401)
    wrong = sdk.call("requestAccessToken", {"code": "not-a-code",
                                            "redirect_uri": callback.url})
    assert wrong.status == 400 and wrong.body["error"] == "invalid_grant"


def _find(owner: DavOwner, path: str, summary: str) -> bool:
    """Whether alice's calendar on the CalDAV server holds an event with this summary."""
    return any(f"SUMMARY:{summary}" in str(item.data) for item in owner.calendar(path).events())


def test_node_sdk_elevated_permissions_and_external_events(
        node_server: GatewayServer, callback: CallbackServer,
        radicale: tuple[RadicaleServer, DavOwner, str]) -> None:
    """elevatedPermissions → the user approves on Calgate's page (plain HTTP forms) →
    updateExternalEvent and deleteExternalEvent change an event the app did not create."""
    dav, owner, path = radicale
    at = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0,
                                                         microsecond=0)
    owner.add(path, "owner-1", "Owner's own", at, timedelta(hours=1))
    app = node_server.register_client(name="Node App", redirect_uris=[callback.url],
                                      scopes=SCOPE.split(), legacy_no_pkce=True)
    sdk = NodeSdk(node_server.url, {"client_id": app.client_id,
                                    "client_secret": app.secret})
    sdk.call("requestAccessToken", {"code": link(node_server, app, callback, dav.url),
                                    "redirect_uri": callback.url}).unwrap()
    calendar_id = eventually(lambda: next(
        c["calendar_id"] for c in sdk.call("listCalendars").unwrap()["calendars"]
        if c["calendar_name"] == "Work"))
    window = {"tzid": "Etc/UTC", "from": (at - timedelta(days=1)).date().isoformat(),
              "to": (at + timedelta(days=2)).date().isoformat(),
              "calendar_ids": [calendar_id]}

    def external(summary: str) -> list[dict[str, Any]]:
        return [e for e in sdk.call("readEvents", window).unwrap()["events"]
                if e["summary"] == summary]

    uid = eventually(lambda: external("Owner's own"))[0]["event_uid"]
    change = {"calendar_id": calendar_id, "event_uid": uid, "summary": "Moved by Node",
              "start": (at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "end": (at + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    refused = sdk.call("updateExternalEvent", change)
    assert refused.status == 403 and refused.body["error"] == "insufficient_permission"

    asked = sdk.call("elevatedPermissions", {
        "permissions": [{"calendar_id": calendar_id, "permission_level": "unrestricted"}],
        "redirect_uri": callback.url}).unwrap()["permissions_request"]
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        page = browser.get(asked["url"])
        assert page.status_code == 200 and "not only the ones it created" in page.text
        match = CSRF.search(page.text)
        assert match is not None
        answer = browser.post(asked["url"], data={"csrf_token": match.group(1),
                                                  "decision": "approve"})
        assert answer.status_code == 303 and answer.headers["location"].startswith(callback.url)
    listed = sdk.call("listCalendars").unwrap()["calendars"]
    assert next(c for c in listed if c["calendar_id"] == calendar_id)[
        "permission_level"] == "unrestricted"

    assert sdk.call("updateExternalEvent", change).ok
    eventually(lambda: _find(owner, path, "Moved by Node"))
    assert not _find(owner, path, "Owner's own")
    assert eventually(lambda: external("Moved by Node"))[0]["event_uid"] == uid
    assert sdk.call("deleteExternalEvent", {"calendar_id": calendar_id, "event_uid": uid}).ok
    eventually(lambda: not _find(owner, path, "Moved by Node"))
