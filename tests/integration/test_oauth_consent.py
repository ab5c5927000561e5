"""OAUTH.md 30-36: the consent screen and the browser session."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient

from oauth_server import scopes as scope_catalogue
from tests.support.memory_connector import PASSWORD
from tests.support.oauth import Pkce, connect, csrf, decide, exchange, make_client, start
from tests.support.oauth_extra import custom_gateway, location_query

ISSUER = "http://127.0.0.1:8080"


def flow_pages(http, client):
    """Every page of one flow: choose, connect, consent; plus the flow URL and CSRF token."""
    flow = start(http, client, pkce=Pkce())
    choose = http.get(flow)
    token = csrf(choose.text)
    http.post(f"{flow}/provider", data={"csrf_token": token, "provider": "memory"})
    connect_page = http.get(flow)
    http.post(f"{flow}/connect", data={"csrf_token": token, "username": "jane@example.com",
                                       "password": PASSWORD})
    consent = http.get(flow)
    assert 'name="decision"' in consent.text
    return flow, token, [choose, connect_page, consent]


def error_pages(http, client):
    return [http.get("/oauth/authorize", params={"client_id": "cli_nope"}),
            http.get("/oauth/flow/not-a-flow"),
            http.get("/oauth/authorize", params={"client_id": client.client_id,
                                                 "redirect_uri": "https://attacker.example/"})]


def test_pages_cannot_be_framed(http, gateway):
    """OAUTH.md 30: consent and error pages send frame-ancestors 'none' and DENY."""
    client = make_client(gateway)
    _, _, pages = flow_pages(http, client)
    for page in pages + error_pages(http, client):
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


def test_pages_are_not_cached(http, gateway):
    """OAUTH.md 31."""
    client = make_client(gateway)
    _, _, pages = flow_pages(http, client)
    for page in pages + error_pages(http, client):
        assert page.headers["cache-control"] == "no-store"


def test_no_referrer_and_nothing_third_party(http, gateway):
    """OAUTH.md 32: no-referrer; no scripts; every src/href stays on the AS."""
    client = make_client(gateway)
    _, _, pages = flow_pages(http, client)
    for page in pages + error_pages(http, client):
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in page.text.lower()
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', page.text):
            assert url.startswith("/"), url
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_consent_post_needs_the_session_bound_csrf_token(http, gateway):
    """OAUTH.md 33: missing token, another session's token, or a cross-site POST -> 403."""
    client = make_client(gateway)
    flow, token, _ = flow_pages(http, client)
    r = http.post(f"{flow}/decision", data={"decision": "allow"})
    assert r.status_code == 403 and "location" not in r.headers
    # Another browser starts its own flow and brings its (valid for it) token.
    with TestClient(http.app, base_url=ISSUER, follow_redirects=False) as other:
        _other_flow, other_token, _ = flow_pages(other, client)
        r = http.post(f"{flow}/decision", data={"csrf_token": other_token, "decision": "allow"})
        assert r.status_code == 403 and "location" not in r.headers
        # Cross-site: the attacker's browser posts to the victim's flow without its cookie.
        r = other.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})
        assert r.status_code == 403 and "location" not in r.headers
    # The same applies to the other steps of the flow.
    for step in ("provider", "connect"):
        r = http.post(f"{flow}/{step}", data={"csrf_token": "x" * 43, "provider": "memory"})
        assert r.status_code == 403
    # And the legitimate decision still works afterwards.
    r = http.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})
    assert r.status_code == 303 and "code" in location_query(r.headers["location"])


def test_tampered_hidden_fields_change_nothing(http, gateway):
    """OAUTH.md 34: client, redirect URI, scope, state and challenge live server-side."""
    client = make_client(gateway)
    other = make_client(gateway, name="Other", redirect_uri="https://other.example/cb")
    pkce = Pkce()
    flow = start(http, client, scope="read_account", pkce=pkce)
    connect(http, flow)
    token = csrf(http.get(flow).text)
    r = http.post(f"{flow}/decision", data={
        "csrf_token": token, "decision": "allow", "client_id": other.client_id,
        "redirect_uri": "https://attacker.example/cb", "scope": "read_write", "state": "evil",
        "code_challenge": Pkce().challenge, "code_challenge_method": "plain"})
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(client.redirect_uri + "?")
    query = location_query(location)
    assert query["state"] == ["xyz"]
    body = exchange(http, client, query["code"][0], pkce)
    assert body["_status"] == 200, body
    assert body["scope"] == "read_account"


def test_replayed_consent_post_gives_no_second_code(http, gateway):
    """OAUTH.md 34: the same decision POST again is an error, never another code."""
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    connect(http, flow)
    token = csrf(http.get(flow).text)
    form = {"csrf_token": token, "decision": "allow"}
    first = http.post(f"{flow}/decision", data=form)
    assert first.status_code == 303
    for _ in range(2):
        again = http.post(f"{flow}/decision", data=form)
        assert again.status_code in (400, 403)
        assert "location" not in again.headers
        assert "code=" not in again.text
    again = http.post(f"{flow}/decision", data=form | {"decision": "deny"})
    assert again.status_code in (400, 403) and "location" not in again.headers


def test_parallel_consent_posts_give_one_code(http, gateway):
    """OAUTH.md 34: the flow is finished atomically; racing decisions issue one code."""
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    connect(http, flow)
    token = csrf(http.get(flow).text)
    barrier = threading.Barrier(6)

    def one(_: int):
        barrier.wait()
        return http.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    statuses = [r.status_code for r in results]
    assert all(s < 500 for s in statuses), statuses
    codes = [location_query(r.headers["location"])["code"] for r in results
             if r.status_code == 303]
    assert len(codes) == 1, statuses


def test_consent_names_the_client_the_scopes_and_the_account(http, gateway):
    """OAUTH.md 35 (automatable part): registered name, each scope in words, the linked
    upstream account, and the unverified marker."""
    client = make_client(gateway, name="Acme Scheduling", scopes="read_write")
    flow = start(http, client, scope="read_events create_event", pkce=Pkce())
    page = connect(http, flow, "jane@example.com")
    assert "Acme Scheduling" in page
    assert "jane@example.com" in page
    may, _ = scope_catalogue.describe(["read_events", "create_event"])
    for line in may:
        assert line in page
    assert "unverified app" in page
    verified, _ = gateway.oauth.registry.create(name="Trusted", redirect_uris=[client.redirect_uri],
                                                scopes=["read_account"], verified=True)
    trusted = type(client)(verified.client_id, _)
    page = connect(http, start(http, trusted, pkce=Pkce()))
    assert "Trusted" in page and "unverified app" not in page


def _attrs(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_session_cookie_flags_on_loopback(http, gateway):
    """OAUTH.md 36: HttpOnly, SameSite=Lax, host-only (no Domain), Path=/."""
    client = make_client(gateway)
    r = http.get("/oauth/authorize", params={
        "response_type": "code", "client_id": client.client_id,
        "redirect_uri": client.redirect_uri, "scope": "read_account",
        "code_challenge": Pkce().challenge, "code_challenge_method": "S256"})
    [header] = r.headers.get_list("set-cookie")
    assert header.startswith("calgate_session=")
    attrs = _attrs(header)
    assert {"httponly", "samesite=lax", "path=/"} <= attrs
    assert not any(a.startswith("domain=") for a in attrs)


def test_session_cookie_is_host_prefixed_and_secure_on_https(settings, connector, tmp_path):
    """OAUTH.md 36: with an https issuer, ``__Host-`` prefix and Secure (session and link)."""
    with custom_gateway(settings, connector, tmp_path / "gw2",
                        public_url="https://calgate.example") as (gw, browser):
        client = make_client(gw)
        flow = start(browser, client, pkce=Pkce())
        assert browser.get(flow).request.headers["cookie"].startswith("__Host-calgate_session=")
        r = browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": client.redirect_uri, "scope": "read_account",
            "code_challenge": Pkce().challenge, "code_challenge_method": "S256"})
        headers = r.headers.get_list("set-cookie")
        assert headers and all(h.startswith("__Host-calgate_session=") for h in headers)
        for h in headers:
            attrs = _attrs(h)
            assert {"secure", "httponly", "samesite=lax", "path=/"} <= attrs
            assert not any(a.startswith("domain=") for a in attrs)
        connect(browser, flow)
        token = csrf(browser.get(flow).text)
        r = browser.post(f"{flow}/decision", data={"csrf_token": token, "decision": "allow"})
        assert r.status_code == 303
        [link] = r.headers.get_list("set-cookie")
        assert link.startswith("__Host-calgate_link=")
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= _attrs(link)
        assert location_query(r.headers["location"])["iss"] == ["https://calgate.example"]


def test_flow_url_is_useless_in_another_browser(http, gateway):
    """OAUTH.md 33-34: the flow is bound to the browser session that started it."""
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    with TestClient(http.app, base_url=ISSUER, follow_redirects=False) as other:
        r = other.get(flow)
        assert r.status_code == 400 and 'name="csrf_token"' not in r.text
    connect(http, flow)
    assert "code" in decide(http, flow)
