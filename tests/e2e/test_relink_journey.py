"""Issue 13's linking journeys, in Chromium against the Google emulator: calendars complete
when the code is issued, the account's real name and zone, a link token that joins a
second device's calendar to the same account, and a profile disconnected on purpose that is
relinked from a second browser context through ``profile_relink_url``, keeping its
``profile_id``, ``sub`` and calendars; the same for a CalDAV profile on a real Radicale whose
password changed; and a link token used up by another consent flow between the authorize
request and Allow.

The server runs no worker of its own (``CALGATE_WORKER_MODE=external``): whatever
``GET /v1/calendars`` shows right after the token exchange was stored while linking. The
relink test starts a ``calgate worker`` so that the revoked grant is noticed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pycronofy
import pytest

from gateway.domain.upstream_apps import UpstreamApps
from gateway.secrets.local import LocalSecretStore
from tests.emulators.google import GoogleEmulator
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.processes import stop_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
FULL = "read_account list_calendars read_events read_free_busy create_event delete_event"


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator.running() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, emu: GoogleEmulator
           ) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path_factory.mktemp("calgate-relink"), env={
            "CALGATE_GOOGLE_URL": emu.base_url, "CALGATE_WORKER_MODE": "external"}) as running:
        emu.register_app("relink-cid", "relink-secret", "Relink Portal",
                         [f"{running.url}/oauth/callback/google"])
        store = LocalSecretStore(running.data_dir / "secrets")
        UpstreamApps(store).configure("google", "relink-cid", "relink-secret")
        store.close()
        yield running


def sdk(server: GatewayServer, app: RegisteredApp) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret)
    client.request_handler.base_url = server.url
    client.app_base_url = server.url
    return client


def google_sign_in(page: Any, email: str) -> None:
    """From Calgate's connect (or relink) page through the emulator's Google consent."""
    page.click("#connect")
    page.wait_for_selector("#consent")
    page.fill("#email", email)
    page.click("#allow")
    page.wait_for_load_state()


def link(browser: Any, server: GatewayServer, app: RegisteredApp, callback: CallbackServer,
         email: str, shots: Any, **extra: str) -> dict[str, str]:
    """Links ``email`` in a browser context of its own; returns what the app received."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        url = sdk(server, app).user_auth_link(callback.url, scope=FULL, state="s-1")
        page.goto(url + ("&" + urlencode(extra) if extra else ""))
        if page.query_selector("#provider-google") is None:  # refused before the flow
            return dict(callback.queries[-1])
        page.click("#provider-google")
        google_sign_in(page, email)
        page.wait_for_selector("#allow")
        shots(page, "calgate-review")
        page.click("#allow")
        page.wait_for_load_state()
    finally:
        context.close()
    return dict(callback.queries[-1])


def bearer(client: pycronofy.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.auth.access_token}"}


def test_calendars_account_data_and_link_token(browser, server, emu, callback, shots):
    ada = emu.add_user("ada.relink@gmail.com", name="Ada Lovelace", tz="Europe/London")
    emu.add_calendar(ada, "Team rota", tz="Europe/Paris")
    app = server.register_client(name="Mentor Hub", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    first = sdk(server, app)
    first.get_authorization_from_code(link(browser, server, app, callback, ada, shots)["code"],
                                      redirect_uri=callback.url)

    # No worker runs: the list is what linking stored before the code was issued.
    listed = first.list_calendars()
    assert sorted(c["calendar_name"] for c in listed) == ["Ada Lovelace", "Team rota"]
    assert [c["calendar_primary"] for c in listed if c["calendar_name"] == "Ada Lovelace"
            ] == [True]
    info = first.userinfo()
    (profile,) = info["cronofy.data"]["profiles"]
    assert profile["provider_service"] == "google"  # a consumer (gmail.com) account
    assert profile["profile_initial_sync_required"] is True  # events: not yet
    assert sorted(c["calendar_id"] for c in profile["profile_calendars"]) == sorted(
        c["calendar_id"] for c in listed)
    assert (info["name"], info["zoneinfo"]) == ("Ada Lovelace", "Europe/London")
    account = first.account()
    assert (account["name"], account["default_tzid"]) == ("Ada Lovelace", "Europe/London")

    # A link token joins a calendar linked on another device (no linking cookie there).
    minted = httpx.post(f"{server.url}/v1/link_tokens", headers=bearer(first))
    assert minted.status_code == 200 and minted.headers["cache-control"] == "no-store"
    token = minted.json()["link_token"]
    bob = emu.add_user("bob.relink@example.org", name="Bob Example", tz="America/New_York")
    second = sdk(server, app)
    second.get_authorization_from_code(
        link(browser, server, app, callback, bob, shots, link_token=token)["code"],
        redirect_uri=callback.url)
    joined = second.userinfo()
    assert joined["sub"] == info["sub"]
    services = {p["profile_name"]: p["provider_service"]
                for p in joined["cronofy.data"]["profiles"]}
    assert services == {ada: "google", bob: "gsuite"}  # a Workspace domain
    assert second.account()["default_tzid"] == "Europe/London"  # the account's first zone

    # Used up: the same token again is refused with invalid_request and the app's state.
    refused = link(browser, server, app, callback, bob, shots, link_token=token)
    assert (refused["error"], refused["state"]) == ("invalid_request", "s-1")
    assert "code" not in refused
    assert link(browser, server, app, callback, bob, shots,
                link_token="not-a-token")["error"] == "invalid_request"


def test_disconnected_profile_relinked_from_a_second_browser_context(browser, server, emu,
                                                                     callback, shots):
    carol = emu.add_user("carol.relink@gmail.com", name="Carol Jones", tz="Europe/Berlin")
    mallory = emu.add_user("mallory.relink@gmail.com")
    app = server.register_client(name="Tutor Desk", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    client = sdk(server, app)
    client.get_authorization_from_code(
        link(browser, server, app, callback, carol, shots)["code"], redirect_uri=callback.url)
    before = client.userinfo()
    (profile,) = before["cronofy.data"]["profiles"]
    calendars = sorted(c["calendar_id"] for c in client.list_calendars())

    worker = server.spawn_worker("relink")
    try:
        eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
            "profile_initial_sync_required"], timeout=30)
        # Disconnected on purpose: the user removes the app's access at Google.
        emu.revoke_user_tokens(carol)
        emu.expire_access_tokens(carol)
        shown = eventually(lambda: [p for p in client.list_profiles()
                                    if not p["profile_connected"]], timeout=30)
        relink_url = shown[0]["profile_relink_url"]
        assert relink_url.startswith(f"{server.url}/oauth/relink/")
        start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0,
                                                                 microsecond=0)
        emu.add_event(carol, "primary", {"summary": "Added while away", "start": {
            "dateTime": start.isoformat()}, "end": {"dateTime": (start + timedelta(hours=1))
                                                    .isoformat()}})

        context = browser.new_context(java_script_enabled=False)  # no cookie of the link
        try:
            page = context.new_page()
            page.goto(relink_url)
            assert page.inner_text("#relink-account") == carol
            assert "Tutor Desk" in page.inner_text("h1")
            shots(page, "relink")
            google_sign_in(page, mallory)  # somebody else's account: refused
            assert "this link reconnects" in page.inner_text("#error")
            assert client.list_profiles()[0]["profile_connected"] is False
            google_sign_in(page, carol)
            assert page.inner_text("h1") == "Calendar reconnected"
            shots(page, "relinked")
            assert page.goto(relink_url).status == 404  # works once
            assert page.goto(relink_url[:-3] + "AAA").status == 404  # tampered
        finally:
            context.close()

        after = client.userinfo()
        (again,) = after["cronofy.data"]["profiles"]
        assert after["sub"] == before["sub"]
        assert again["profile_id"] == profile["profile_id"]
        assert again["profile_connected"] is True and "profile_relink_url" not in again
        assert sorted(c["calendar_id"] for c in client.list_calendars()) == calendars
        window = {"from_date": start.date().isoformat(),
                  "to_date": (start + timedelta(days=2)).date().isoformat(),
                  "tzid": "Etc/UTC"}
        eventually(lambda: [e for e in client.read_events(**window)
                            if e["summary"] == "Added while away"], timeout=30)
    finally:
        stop_process(worker)


def test_calendar_list_unreadable_while_linking_is_a_plain_page(browser, server, emu,
                                                                callback, shots):
    dora = emu.add_user("dora.relink@gmail.com")
    app = server.register_client(name="Slot Finder", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    # The account verifies (calendarList/primary), but the list itself keeps failing.
    emu.inject_fault(r".*/users/me/calendarList$", method="GET", status=500, times=50)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(sdk(server, app).user_auth_link(callback.url, scope=FULL, state="s-2"))
        page.click("#provider-google")
        google_sign_in(page, dora)
        shots(page, "calendars-unreadable")
        assert "could not read the list of your calendars" in page.inner_text("#error")
        assert page.query_selector("#allow") is None  # nothing to allow: nothing linked
        assert "Traceback" not in page.content() and "500" not in page.inner_text("main")
    finally:
        context.close()
        emu.clear_faults()
    assert not [q for q in callback.queries if q.get("state") == "s-2"]


def caldav_form(page: Any, url: str, username: str, password: str) -> None:
    """Calgate's CalDAV form (on the connect or the relink page), submitted."""
    page.fill("#field-server_url", url)
    page.fill("#field-username", username)
    page.fill("#field-password", password)
    page.click("#connect")
    page.wait_for_load_state()


def test_caldav_profile_relinked_with_its_new_password(browser, server, callback, shots):
    """The user changes their CalDAV password: the profile is disconnected, and relinking it
    from another browser with the new password keeps its profile_id, sub and calendars."""
    with RadicaleServer(users={"erin": "first-pw", "frank": "frank-pw"}) as radicale:
        owner = DavOwner(radicale.url, "erin", "first-pw")
        path = owner.make_calendar("Lessons")
        owner.close()
        app = server.register_client(name="Lesson Planner", redirect_uris=[callback.url],
                                     scopes=FULL.split(), legacy_no_pkce=True)
        client = sdk(server, app)
        context = browser.new_context(java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(client.user_auth_link(callback.url, scope=FULL, state="dav"))
            page.click("#provider-caldav")
            caldav_form(page, radicale.url, "erin", "first-pw")
            page.click("#allow")
            page.wait_for_load_state()
        finally:
            context.close()
        client.get_authorization_from_code(callback.queries[-1]["code"],
                                           redirect_uri=callback.url)
        before = client.userinfo()
        (profile,) = before["cronofy.data"]["profiles"]
        assert profile["provider_name"] == "caldav" and profile["profile_name"] == "erin"
        calendars = sorted(c["calendar_id"] for c in client.list_calendars())

        worker = server.spawn_worker("relink-caldav")
        try:
            eventually(lambda: not client.userinfo()["cronofy.data"]["profiles"][0][
                "profile_initial_sync_required"], timeout=30)
            # Disconnected on purpose: erin's password changes on the server.
            (radicale.dir / "users").write_text("erin:second-pw\nfrank:frank-pw\n")
            shown = eventually(lambda: [p for p in client.list_profiles()
                                        if not p["profile_connected"]], timeout=30)
            relink_url = shown[0]["profile_relink_url"]
            assert relink_url.startswith(f"{server.url}/oauth/relink/")
            start = (datetime.now(UTC) + timedelta(days=1)).replace(
                hour=9, minute=0, second=0, microsecond=0)
            owner = DavOwner(radicale.url, "erin", "second-pw")
            owner.add(path, "away-1", "Added while away", start)
            owner.close()

            context = browser.new_context(java_script_enabled=False)  # none of the first's
            try:
                page = context.new_page()
                page.goto(relink_url)
                assert page.inner_text("#relink-account") == "erin"
                assert "Lesson Planner" in page.inner_text("h1")
                shots(page, "relink-caldav")
                caldav_form(page, radicale.url, "erin", "first-pw")  # the old password
                assert "did not accept that username and password" in page.inner_text("#error")
                assert "Traceback" not in page.content()
                caldav_form(page, radicale.url, "frank", "frank-pw")  # somebody else
                assert "this link reconnects" in page.inner_text("#error")
                assert client.list_profiles()[0]["profile_connected"] is False
                caldav_form(page, radicale.url, "erin", "second-pw")
                assert page.inner_text("h1") == "Calendar reconnected"
                shots(page, "relinked-caldav")
                assert page.goto(relink_url).status == 404  # works once
            finally:
                context.close()

            after = client.userinfo()
            (again,) = after["cronofy.data"]["profiles"]
            assert after["sub"] == before["sub"]
            assert again["profile_id"] == profile["profile_id"]
            assert again["profile_connected"] is True and "profile_relink_url" not in again
            assert sorted(c["calendar_id"] for c in client.list_calendars()) == calendars
            window = {"from_date": start.date().isoformat(),
                      "to_date": (start + timedelta(days=2)).date().isoformat(),
                      "tzid": "Etc/UTC"}
            eventually(lambda: [e for e in client.read_events(**window)
                                if e["summary"] == "Added while away"], timeout=30)
        finally:
            stop_process(worker)


def test_link_token_used_up_before_allow(browser, server, emu, callback, shots):
    """Two consent flows start with the same link token (both are shown the review step):
    the first Allow uses it up, and the second is refused in plain words, linking nothing."""
    gina = emu.add_user("gina.relink@gmail.com", name="Gina Ortiz")
    hal = emu.add_user("hal.relink@gmail.com")
    ivy = emu.add_user("ivy.relink@gmail.com")
    app = server.register_client(name="Rota Board", redirect_uris=[callback.url],
                                 scopes=FULL.split(), legacy_no_pkce=True)
    first = sdk(server, app)
    first.get_authorization_from_code(link(browser, server, app, callback, gina, shots)["code"],
                                      redirect_uri=callback.url)
    token = httpx.post(f"{server.url}/v1/link_tokens", headers=bearer(first)).json()[
        "link_token"]
    url = sdk(server, app).user_auth_link(callback.url, scope=FULL, state="s-3") + "&" + \
        urlencode({"link_token": token})

    contexts = [browser.new_context(java_script_enabled=False) for _ in range(2)]
    try:
        pages = []
        for context, email in zip(contexts, (hal, ivy), strict=True):
            page = context.new_page()
            page.goto(url)
            page.click("#provider-google")
            google_sign_in(page, email)
            page.wait_for_selector("#allow")
            pages.append(page)
        pages[0].click("#allow")
        pages[0].wait_for_load_state()
        joined = dict(callback.queries[-1])
        pages[1].click("#allow")
        pages[1].wait_for_load_state()
        shots(pages[1], "link-token-used")
        refused = dict(callback.queries[-1])
    finally:
        for context in contexts:
            context.close()

    assert (refused["error"], refused["state"]) == ("invalid_request", "s-3")
    assert refused["error_description"] == \
        "The 'link_token' is invalid, expired or already used."
    assert "code" not in refused
    second = sdk(server, app)
    second.get_authorization_from_code(joined["code"], redirect_uri=callback.url)
    assert second.userinfo()["sub"] == first.userinfo()["sub"]
    assert sorted(p["profile_name"] for p in first.userinfo()["cronofy.data"]["profiles"]) \
        == sorted([gina, hal])  # ivy's calendar was linked nowhere
