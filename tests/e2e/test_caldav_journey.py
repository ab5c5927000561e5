"""Issue 3's journey: a real Radicale (and Xandikos) account linked through the consent screen
in Chromium, then the unmodified pycronofy SDK lists calendars, writes, reads (over several
pages), updates, deletes and reads free/busy; every write is checked on the CalDAV server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pycronofy
import pytest

from tests.support.davservers import DavOwner, RadicaleServer, XandikosServer
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
SCOPE = "read_account list_calendars read_events read_free_busy create_event delete_event"


@pytest.fixture(params=["radicale", "xandikos"])
def dav(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str, DavOwner, str]]:
    """(server URL, username, password, the owner's own client, a calendar path)."""
    if request.param == "radicale":
        with RadicaleServer(users={"alice": "wonderland"}) as radicale:
            owner = DavOwner(radicale.url, "alice", "wonderland")
            yield radicale.url, "alice", "wonderland", owner, owner.make_calendar("Work")
            owner.close()
    else:
        with XandikosServer() as xandikos:
            owner = DavOwner(xandikos.url)
            # No authentication on this Xandikos: any credentials the user types are accepted.
            yield xandikos.url, "owner", "any", owner, owner.make_calendar("Work")
            owner.close()


def link_in_browser(browser: Any, server: GatewayServer, app: RegisteredApp,
                    callback: CallbackServer, dav: tuple, shots: Any) -> dict[str, str]:
    url, username, password, _owner, _path = dav
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(client.user_auth_link(callback.url, scope=SCOPE, state="caldav"))
    page.click("#provider-caldav")
    page.fill("#field-server_url", url)
    page.fill("#field-username", username)
    page.fill("#field-password", password)
    shots(page, "connect-caldav")
    page.click("#connect")
    page.wait_for_selector("#allow")
    shots(page, "consent")
    page.click("#allow")
    page.wait_for_load_state()
    context.close()
    assert len(callback.queries) == 1, callback.queries
    return callback.queries[0]


def test_caldav_account_through_consent_and_pycronofy(browser, server, callback, dav, shots):
    _url, _user, _pw, owner, path = dav
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    for i in range(105):  # more than one page of 100 events
        owner.add(path, f"upstream-{i}", f"Busy {i}", start + timedelta(days=i % 30, hours=i % 5),
                  timedelta(minutes=30))
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=SCOPE.split(), legacy_no_pkce=True)
    got = link_in_browser(browser, server, app, callback, dav, shots)
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    client.get_authorization_from_code(got["code"], redirect_uri=callback.url)

    # The initial sync runs in the server's worker.
    eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
        "profile_initial_sync_required"])
    calendars = client.list_calendars()
    (calendar,) = [c for c in calendars if c["calendar_name"] == "Work"]
    assert calendar["calendar_readonly"] is False
    calendar_id = calendar["calendar_id"]

    window = {"from_date": (start - timedelta(days=1)).date().isoformat(),
              "to_date": (start + timedelta(days=40)).date().isoformat(), "tzid": "Etc/UTC"}
    upstream = list(client.read_events(calendar_ids=(calendar_id,), **window))
    assert len([e for e in upstream if e["summary"].startswith("Busy ")]) == 105

    event = {"event_id": "session-1", "summary": "Mentoring session",
             "description": "Bring questions", "start": start + timedelta(days=1, hours=5),
             "end": start + timedelta(days=1, hours=6)}
    client.upsert_event(calendar_id, event)
    raw = eventually(lambda: _find(owner, path, "Mentoring session"))
    assert "Bring questions" in raw

    mine = eventually(lambda: [e for e in client.read_events(
        calendar_ids=(calendar_id,), include_managed=True, **window)
        if e.get("event_id") == "session-1"])
    assert mine[0]["summary"] == "Mentoring session"

    client.upsert_event(calendar_id, {**event, "summary": "Moved session"})
    eventually(lambda: _find(owner, path, "Moved session"))
    assert _find(owner, path, "Mentoring session") is None

    client.delete_event(calendar_id, "session-1")
    eventually(lambda: _find(owner, path, "Moved session") is None)

    blocks = list(client.read_free_busy(calendar_ids=(calendar_id,), **window))
    assert len(blocks) >= 105
    assert {b["free_busy_status"] for b in blocks} == {"busy"}
    assert all("summary" not in b for b in blocks)


def _find(owner: DavOwner, path: str, summary: str) -> str | None:
    for item in owner.calendar(path).events():
        data = str(item.data)
        if f"SUMMARY:{summary}" in data:
            return data
    return None

