"""Issue 13's journey: the unmodified pycronofy SDK asks for elevated permissions, the user
declines and then approves on Calgate's page in Chromium, and the app changes and deletes an
event it did not create, on a real Radicale and on the Google emulator; every write is
checked upstream. Before approval and after a decline the same calls are refused; a used
permissions link is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest
from pycronofy.exceptions import PyCronofyRequestError

from gateway.domain.upstream_apps import UpstreamApps
from gateway.secrets.local import LocalSecretStore
from tests.emulators.google import GoogleEmulator
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
SCOPE = "read_account list_calendars read_events create_event delete_event"
USER = "grace@example.com"


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def first_hour(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=9, minute=0, second=0,
                                                              microsecond=0)


def refused(call: Callable[[], Any]) -> Any:
    with pytest.raises(PyCronofyRequestError) as raised:
        call()
    return raised.value.response


def answer_in_browser(browser: Any, url: str, button: str, shots: Any, name: str) -> str:
    """Open the permissions page (a fresh browser: no Calgate session needed), check its
    words, press ``button``; returns the page's heading."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url)
    heading = page.inner_text("#page-title")
    shots(page, f"{name}-ask")
    page.click(button)
    page.wait_for_load_state()
    context.close()
    return heading


def page_status(browser: Any, url: str) -> tuple[int, str]:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    response = page.goto(url)
    text = page.inner_text("#page-title")
    context.close()
    return response.status, text


def levels(client: pycronofy.Client, calendar_id: str) -> tuple[str, str]:
    """permission_level from GET /v1/calendars and from userinfo's profile_calendars."""
    listed = next(c for c in client.list_calendars() if c["calendar_id"] == calendar_id)
    profiles = client.userinfo()["cronofy.data"]["profiles"]
    held = next(c for p in profiles for c in p["profile_calendars"]
                if c["calendar_id"] == calendar_id)
    return listed["permission_level"], held["permission_level"]


def journey(browser: Any, client: pycronofy.Client, callback: CallbackServer, shots: Any,
            calendar_id: str, summary: str, start: datetime,
            upstream: Callable[[str], Any], kept: Callable[[Any], bool]) -> None:
    """From a linked account whose calendar holds the external event ``summary`` at
    ``start``: refused, declined, approved, changed, deleted; ``upstream(summary)`` finds
    the event upstream (None when there is none); ``kept`` checks that what the app did not
    send is as the owner made it."""
    window = {"from_date": (start - timedelta(days=1)).date().isoformat(),
              "to_date": (start + timedelta(days=5)).date().isoformat(), "tzid": "Etc/UTC"}

    def external() -> dict[str, Any]:
        return next(e for e in client.read_events(calendar_ids=(calendar_id,), **window)
                    if e["summary"] == summary)

    event = eventually(external)
    uid = event["event_uid"]
    assert "event_id" not in event
    assert event["options"]["update"] is False and event["options"]["delete"] is False
    assert levels(client, calendar_id) == ("sandbox", "sandbox")
    change = {"event_uid": uid, "summary": "Moved by the app",
              "start": start + timedelta(hours=2), "end": start + timedelta(hours=3)}

    # Before approval: refused, nothing upstream changes.
    response = refused(lambda: client.upsert_event(calendar_id, dict(change)))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_permission"
    assert refused(lambda: client.delete_external_event(calendar_id, uid)).status_code == 403

    # Declined: still refused; the link is spent.
    asked = client.elevated_permissions(
        [{"calendar_id": calendar_id, "permission_level": "unrestricted"}], callback.url)
    heading = answer_in_browser(browser, asked["url"], "#decline", shots, "decline")
    assert "asks to change and delete any event in" in heading
    assert "not only the ones it created" in heading
    assert callback.queries[-1].get("error") == "access_denied", callback.queries
    assert levels(client, calendar_id) == ("sandbox", "sandbox")
    assert refused(lambda: client.upsert_event(calendar_id, dict(change))).status_code == 403
    assert page_status(browser, asked["url"]) == (410, "Already answered")

    # Approved: the level flips, options follow, and the app may change the event.
    asked = client.elevated_permissions(
        [{"calendar_id": calendar_id, "permission_level": "unrestricted"}], callback.url)
    answer_in_browser(browser, asked["url"], "#approve", shots, "approve")
    assert "error" not in callback.queries[-1], callback.queries
    assert levels(client, calendar_id) == ("unrestricted", "unrestricted")
    assert page_status(browser, asked["url"]) == (410, "Already answered")  # single use
    options = external()["options"]
    assert options["update"] is True and options["delete"] is True

    client.upsert_event(calendar_id, dict(change))
    assert kept(eventually(lambda: upstream("Moved by the app")))
    assert upstream(summary) is None
    moved = eventually(lambda: next((e for e in client.read_events(
        calendar_ids=(calendar_id,), **window) if e["summary"] == "Moved by the app"), None))
    assert moved["event_uid"] == uid and "calgate_write" not in moved
    assert moved["start"] == (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    client.delete_external_event(calendar_id, uid)
    eventually(lambda: upstream("Moved by the app") is None)
    eventually(lambda: not [e for e in client.read_events(calendar_ids=(calendar_id,),
                                                          **window)
                            if e["event_uid"] == uid])


# -- Radicale -----------------------------------------------------------------------------

@pytest.fixture
def radicale() -> Iterator[tuple[RadicaleServer, DavOwner, str]]:
    with RadicaleServer(users={"grace": "hopper"}) as server:
        owner = DavOwner(server.url, "grace", "hopper")
        yield server, owner, owner.make_calendar("Work")
        owner.close()


def test_radicale_external_event_changed_after_approval(browser, server, callback, shots,
                                                        radicale):
    dav, owner, path = radicale
    start = first_hour(2)
    owner.add(path, "standup-1", "Team standup", start, timedelta(minutes=30))
    app = server.register_client(name="Room Planner", redirect_uris=[callback.url],
                                 scopes=SCOPE.split(), legacy_no_pkce=True)
    client = sdk(server, app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(client.user_auth_link(callback.url, scope=SCOPE, state="dav"))
    page.click("#provider-caldav")
    page.fill("#field-server_url", dav.url)
    page.fill("#field-username", "grace")
    page.fill("#field-password", "hopper")
    page.click("#connect")
    page.wait_for_selector("#allow")
    page.click("#allow")
    page.wait_for_load_state()
    context.close()
    client.get_authorization_from_code(callback.queries[-1]["code"], redirect_uri=callback.url)
    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    (calendar,) = [c for c in client.list_calendars() if c["calendar_name"] == "Work"]

    def upstream(summary: str) -> str | None:
        for item in owner.calendar(path).events():
            data = str(item.data)
            if f"SUMMARY:{summary}" in data:
                return data
        return None

    journey(browser, client, callback, shots, calendar["calendar_id"], "Team standup",
            start, upstream, lambda data: "UID:standup-1" in data and "SEQUENCE:1" in data)


# -- the Google emulator ------------------------------------------------------------------

@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.running() as running:
        yield running


@pytest.fixture
def google_server(tmp_path_factory: pytest.TempPathFactory, emu: GoogleEmulator
                  ) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path_factory.mktemp("calgate-elevated-google"), env={
            "CALGATE_GOOGLE_URL": emu.base_url, "CALGATE_SYNC_INTERVAL": "3600"}) as running:
        emu.register_app("google-cid", "google-secret", "Room Planner",
                         [f"{running.url}/oauth/callback/google"])
        store = LocalSecretStore(running.data_dir / "secrets")
        UpstreamApps(store).configure("google", "google-cid", "google-secret")
        store.close()
        yield running


def test_google_external_event_changed_after_approval(browser, google_server, emu, callback,
                                                      shots):
    emu.add_user(USER)
    start = first_hour(3)
    emu.add_event(USER, "primary", {"summary": "Board meeting", "start": {
        "dateTime": start.isoformat()}, "end": {"dateTime": (start + timedelta(hours=1))
                                                .isoformat()},
        "attendees": [{"email": "ceo@example.com"}]})
    app = google_server.register_client(name="Room Planner", redirect_uris=[callback.url],
                                        scopes=SCOPE.split(), legacy_no_pkce=True)
    client = sdk(google_server, app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(client.user_auth_link(callback.url, scope=SCOPE, state="g"))
    page.click("#provider-google")
    page.click("#connect")
    page.wait_for_selector("#consent")
    page.fill("#email", USER)
    page.click("#allow")
    page.wait_for_selector("#allow")
    page.click("#allow")
    page.wait_for_load_state()
    context.close()
    client.get_authorization_from_code(callback.queries[-1]["code"], redirect_uri=callback.url)
    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    (calendar,) = [c for c in client.list_calendars() if c["calendar_primary"]]

    def upstream(summary: str) -> dict[str, Any] | None:
        return next((e for e in emu.events(USER) if e.get("summary") == summary), None)

    journey(browser, client, callback, shots, calendar["calendar_id"], "Board meeting",
            start, upstream,  # only the fields sent were patched: the guests stay
            lambda event: [a["email"] for a in event.get("attendees", [])]
            == ["ceo@example.com"])
