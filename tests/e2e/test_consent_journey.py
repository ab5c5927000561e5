"""The consent journey in a real headless Chromium against a real uvicorn server.

Journey and deny run with JavaScript disabled (the pages must work without it); only the
CSRF test enables JavaScript, to tamper with the hidden token before submitting.
Screenshots of every step land in test-artifacts/consent/.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.e2e_server import CallbackServer, GatewayServer, RegisteredApp
from tests.support.memory_connector import PASSWORD

pytestmark = pytest.mark.browser

SCOPE = "read_free_busy create_event delete_event"
STATE = "café & crème = 1 + 2?/#x"  # space, &, é, =, +, ?, /, # must come back verbatim
ACCENT_RGB = "rgb(123, 44, 191)"  # #7b2cbf
PRIVACY = "https://mentorhub.example/privacy"
SUPPORT = "https://mentorhub.example/help"
USERNAME = "jane@example.com"


@pytest.fixture
def app(server: GatewayServer, callback: CallbackServer) -> RegisteredApp:
    from oauth_server.registry import Branding

    return server.register_client(
        name="Mentor Hub", redirect_uris=[callback.url], scopes=["read_write"],
        branding=Branding(display_name="Mentor Hub", accent_color="#7b2cbf",
                          privacy_policy_url=PRIVACY, support_url=SUPPORT))


def new_context(browser: Browser, *, javascript: bool) -> BrowserContext:
    return browser.new_context(java_script_enabled=javascript, locale="en-GB",
                               viewport={"width": 900, "height": 800})


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser, javascript=False)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def js_page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser, javascript=True)
    try:
        yield context.new_page()
    finally:
        context.close()


class Pkce:
    def __init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        self.challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(server: GatewayServer, app: RegisteredApp, pkce: Pkce) -> str:
    params = {"response_type": "code", "client_id": app.client_id,
              "redirect_uri": app.redirect_uri, "scope": SCOPE, "state": STATE,
              "code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    return f"{server.url}/oauth/authorize?{urlencode(params, quote_via=quote)}"


def reach_consent(page: Page, server: GatewayServer, app: RegisteredApp, pkce: Pkce,
                  shots, *, wrong_password_first: bool = False) -> None:
    """authorize -> choose provider -> connect -> the consent page."""
    page.goto(authorize_url(server, app, pkce))
    assert page.url.startswith(f"{server.url}/oauth/flow/"), page.url
    expect(page.locator("h1")).to_have_text("Connect your calendar to Mentor Hub")
    shots(page, "choose-provider")
    page.click("#provider-memory")
    expect(page.locator("h1")).to_have_text("Connect Test Calendar")
    shots(page, "connect")
    if wrong_password_first:
        page.fill("#field-username", USERNAME)
        page.fill("#field-password", "wrong horse")
        page.click("#connect")
        alert = page.get_by_role("alert")
        expect(alert).to_have_text("The test calendar did not accept that password.")
        expect(alert).to_be_visible()
        shots(page, "connect-wrong-password")
        # Without JavaScript too, focus starts on the message (autofocus), then Tab moves on
        # to the first field.
        expect(alert).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.locator("#field-username")).to_be_focused()
        expect(page.locator("h1")).to_have_text("Connect Test Calendar")
    page.fill("#field-username", USERNAME)
    page.fill("#field-password", PASSWORD)
    page.click("#connect")
    expect(page.locator("h1")).to_have_text("Allow Mentor Hub to use your calendar?")
    expect(page.get_by_role("alert")).to_have_count(0)


def exchange(server: GatewayServer, app: RegisteredApp, code: str, pkce: Pkce) -> httpx.Response:
    assert app.secret is not None
    return httpx.post(f"{server.url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
        "client_id": app.client_id, "client_secret": app.secret,
        "code_verifier": pkce.verifier})


def test_journey_allow(no_js_page: Page, server: GatewayServer, app: RegisteredApp,
                       callback: CallbackServer, shots) -> None:
    page, pkce = no_js_page, Pkce()
    reach_consent(page, server, app, pkce, shots, wrong_password_first=True)

    # What the user is shown, in plain words.
    expect(page.locator(".app-name")).to_contain_text("Mentor Hub")
    expect(page.locator("#linked-account")).to_have_text(USERNAME)
    expect(page.locator("#may li")).to_have_text([
        "See when you are busy or free",
        "Create events in your calendars and change the events it created",
        "Delete the events it created",
    ])
    promises = page.locator("#promises li")
    expect(promises).to_contain_text(["It sees only when you are busy, never what you are doing."])
    expect(promises).to_contain_text(
        ["It can only see and change events it creates, never your other events."])
    expect(page.get_by_role("link", name="Mentor Hub privacy policy")).to_have_attribute(
        "href", PRIVACY)
    expect(page.get_by_role("link", name="Help")).to_have_attribute("href", SUPPORT)

    # Branding: the client's accent colour reaches the primary button and the card.
    expect(page.locator("#allow")).to_have_css("background-color", ACCENT_RGB)
    expect(page.locator("main.card")).to_have_css("border-top-color", ACCENT_RGB)

    shots(page, "consent")

    # Keyboard: Tab reaches Allow before Deny.
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        if focused.count():
            order.append(focused.get_attribute("id") or focused.inner_text())
        if "deny" in order:
            break
    assert "allow" in order and "deny" in order, order
    assert order.index("allow") < order.index("deny"), order
    assert order.index("deny") == order.index("allow") + 1, order
    expect(page.locator("#deny")).to_be_focused()
    shots(page, "consent-keyboard-focus")

    page.click("#allow")
    expect(page.locator("#result")).to_have_text("Connected")
    shots(page, "callback")

    assert len(callback.queries) == 1, callback.raw
    got = callback.queries[0]
    assert set(got) == {"code", "state", "iss"}, got
    assert got["state"] == STATE
    assert got["iss"] == server.url

    response = exchange(server, app, got["code"], pkce)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == SCOPE
    assert body["access_token"] and body["refresh_token"]
    assert body["sub"] == body["account_id"]
    assert body["linking_profile"]["profile_name"] == USERNAME
    # The code is single-use.
    again = exchange(server, app, got["code"], pkce)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_journey_deny(no_js_page: Page, server: GatewayServer, app: RegisteredApp,
                      callback: CallbackServer, shots) -> None:
    page = no_js_page
    reach_consent(page, server, app, Pkce(), shots)
    shots(page, "consent")
    page.click("#deny")
    expect(page.locator("#result")).to_have_text("Not connected")
    shots(page, "callback")
    assert len(callback.queries) == 1, callback.raw
    got = callback.queries[0]
    assert got.get("error") == "access_denied", got
    assert got["state"] == STATE
    assert got["iss"] == server.url
    assert "code" not in got


def test_tampered_csrf_token_is_refused(js_page: Page, server: GatewayServer,
                                        app: RegisteredApp, callback: CallbackServer,
                                        shots) -> None:
    page = js_page
    reach_consent(page, server, app, Pkce(), shots)
    tampered = page.evaluate("""() => {
        const input = document.querySelector('form.decision input[name="csrf_token"]');
        input.value = input.value.slice(0, -4) + (input.value.endsWith('AAAA') ? 'BBBB' : 'AAAA');
        return input.value;
    }""")
    assert tampered
    shots(page, "consent-tampered")
    with page.expect_navigation() as navigation:
        page.click("#allow")
    response = navigation.value
    assert response is not None and response.status == 403
    assert response.url.startswith(f"{server.url}/oauth/flow/")
    expect(page.get_by_role("alert")).to_contain_text("The form could not be verified")
    shots(page, "forbidden")
    assert callback.queries == []
