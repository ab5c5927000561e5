"""OAUTH.md 7-29: the authorization endpoint (client and redirect URI validation, request
parameters, state, PKCE and ``iss``)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from oauth_server.registry import ClientError, validate_redirect_uri
from tests.support.memory_connector import PASSWORD
from tests.support.oauth import (
    REDIRECT,
    Pkce,
    authorize,
    connect,
    csrf,
    decide,
    make_client,
    start,
)
from tests.support.oauth_extra import location_query

ISSUER = "http://127.0.0.1:8080"
ATTACKER = "https://attacker.example/cb"


def params(client, pkce: Pkce | None = None, **overrides: str | None) -> list[tuple[str, str]]:
    """Authorization request parameters; ``None`` drops one."""
    pkce = pkce or Pkce()
    base: dict[str, str | None] = {
        "response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT,
        "scope": "read_account", "state": "xyz", "code_challenge": pkce.challenge,
        "code_challenge_method": "S256"}
    base |= overrides
    return [(k, v) for k, v in base.items() if v is not None]


def get_authorize(http, query):
    return http.get("/oauth/authorize", params=query)


def assert_error_page(response) -> None:
    """Refused on the AS itself: an HTML error page, never a redirect anywhere."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "attacker.example" not in response.text


def assert_error_redirect(response, error: str, state: str | None = "xyz") -> dict:
    """Redirected to R with ``error``, the client's ``state`` and ``iss`` (RFC 9207)."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = location_query(location)
    assert query["error"] == [error], query
    assert query["iss"] == [ISSUER]
    if state is None:
        assert "state" not in query
    else:
        assert query["state"] == [state]
    assert "code" not in query and "access_token" not in location
    return query


def assert_flow_started(response) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/oauth/flow/")


# -- client and redirect URI validation ----------------------------------------------------
def test_unknown_or_missing_client_id_gets_an_error_page(http, gateway):
    """OAUTH.md 7."""
    client = make_client(gateway)
    assert_error_page(get_authorize(http, params(client, client_id="cli_unknown")))
    assert_error_page(get_authorize(http, params(client, client_id=None)))


def test_unregistered_redirect_uri_gets_an_error_page(http, gateway):
    """OAUTH.md 8."""
    client = make_client(gateway)
    assert_error_page(get_authorize(http, params(client, redirect_uri=ATTACKER)))


REDIRECT_VARIANTS = [
    # OAUTH.md 9: exact string equality, no prefix, subpath or query tolerance
    REDIRECT + "/evil", REDIRECT + "?x=1", REDIRECT + "/", REDIRECT + "evil", REDIRECT + "#frag",
    # OAUTH.md 10: encoded traversal, userinfo confusion, suffix host
    REDIRECT + "/..%2Fevil", REDIRECT + "/%252e%252e%252Fevil",
    "https://app.example@attacker.example/cb", "https://app.example.attacker.example/cb",
    # OAUTH.md 11: case in host, scheme or path
    "https://APP.example/cb", "https://app.example/CB", "HTTPS://app.example/cb",
    # OAUTH.md 12: http variant of an https R
    "http://app.example/cb",
]


def test_redirect_uri_must_match_exactly(http, gateway):
    """OAUTH.md 9-12: every near miss of R gets the error page."""
    client = make_client(gateway)
    for variant in REDIRECT_VARIANTS:
        assert_error_page(get_authorize(http, params(client, redirect_uri=variant)))
    assert_flow_started(get_authorize(http, params(client)))


def test_non_loopback_http_redirect_uri_cannot_be_registered():
    """OAUTH.md 12 (registration; pure validation, no database needed)."""
    for uri in ("http://app.example/cb", "http://192.0.2.1/cb", "http://app.example:8080/cb",
                "https://app.example/cb#frag", "https://user@app.example/cb", "javascript:x"):
        with pytest.raises(ClientError):
            validate_redirect_uri(uri)
    for uri in ("http://127.0.0.1:5000/cb", "http://localhost/cb", "http://[::1]/cb",
                "https://app.example/cb", "com.example.app:/cb"):
        assert validate_redirect_uri(uri) == uri


def test_non_loopback_http_redirect_uri_is_refused_by_the_registry(gateway):
    """OAUTH.md 12: the registry applies the same rule."""
    with pytest.raises(ClientError):
        make_client(gateway, redirect_uri="http://app.example/cb")
    assert make_client(gateway, redirect_uri="http://127.0.0.1:5000/cb").client_id


def test_repeated_redirect_uri_is_refused_without_redirecting(http, gateway):
    """OAUTH.md 13: no redirect to either value."""
    client = make_client(gateway)
    for pair in ((REDIRECT, ATTACKER), (ATTACKER, REDIRECT), (REDIRECT, REDIRECT)):
        query = params(client, redirect_uri=None) + [("redirect_uri", u) for u in pair]
        assert_error_page(get_authorize(http, query))


def test_missing_redirect_uri_gets_an_error_page(http, gateway):
    """OAUTH.md 14: no fallback, even to the single registered URI."""
    client = make_client(gateway)
    assert_error_page(get_authorize(http, params(client, redirect_uri=None)))


def test_no_open_redirector(http, gateway):
    """OAUTH.md 15 (automatable part): no login/logout redirectors exist; error pages link
    nowhere off the AS."""
    for path in ("/login?next=https://attacker.example", "/logout?redirect=https://attacker.example",
                 "/oauth/login?next=https://attacker.example"):
        r = http.get(path)
        assert r.status_code < 300 or r.status_code >= 400
        assert "attacker.example" not in r.headers.get("location", "")
    client = make_client(gateway)
    page = get_authorize(http, params(client, redirect_uri=ATTACKER))
    assert "href=\"http" not in page.text


# -- request parameters, state, iss ----------------------------------------------------------
def test_state_comes_back_byte_identical_with_code_and_iss(http, gateway):
    """OAUTH.md 16-17."""
    client = make_client(gateway)
    state = "st/a te+&=%20é…"
    pkce = Pkce()
    flow = start(http, client, state=state, pkce=pkce)
    connect(http, flow)
    result = decide(http, flow)
    assert result["_location"].startswith(REDIRECT + "?")
    query = location_query(result["_location"])
    assert query["state"] == [state]
    assert query["iss"] == [http.get("/.well-known/oauth-authorization-server").json()["issuer"]]
    assert len(query["code"]) == 1


def test_errors_before_consent_carry_iss_and_state(http, gateway):
    """OAUTH.md 18 (invalid_scope, unsupported_response_type, invalid_request)."""
    client = make_client(gateway)
    assert_error_redirect(get_authorize(http, params(client, scope="nope")), "invalid_scope")
    assert_error_redirect(get_authorize(http, params(client, response_type="token")),
                          "unsupported_response_type")
    assert_error_redirect(get_authorize(http, params(client, code_challenge_method="plain")),
                          "invalid_request")


def test_response_type_token_is_refused_by_redirect(http, gateway):
    """OAUTH.md 19: no access token in the URL."""
    client = make_client(gateway)
    for rtype in ("token", "code token", "id_token"):
        r = get_authorize(http, params(client, response_type=rtype))
        assert_error_redirect(r, "unsupported_response_type")


def test_odd_response_type_or_parameter_names_never_cause_5xx(http, gateway):
    """OAUTH.md 19-20: characters RFC 6749 forbids in error descriptions must not crash."""
    client = make_client(gateway)
    r = get_authorize(http, params(client, response_type='to"ken\\é'))
    assert_error_redirect(r, "unsupported_response_type")
    r = get_authorize(http, [*params(client), ('x"é', "1"), ('x"é', "2")])
    assert_error_redirect(r, "invalid_request")
    r = get_authorize(http, params(client, scope='read_account "é\\'))
    assert_error_redirect(r, "invalid_scope")
    odd_state = 'st/a te+&=%20é…"\\'
    r = get_authorize(http, params(client, scope="nope", state=odd_state))
    assert_error_redirect(r, "invalid_scope", state=odd_state)


def test_missing_response_type_and_empty_state(http, gateway):
    """OAUTH.md 20: missing response_type -> invalid_request with state; ``state=`` counts
    as absent; unknown parameters are ignored."""
    client = make_client(gateway)
    assert_error_redirect(get_authorize(http, params(client, response_type=None)),
                          "invalid_request")
    r = get_authorize(http, params(client, response_type=None, state=""))
    assert_error_redirect(r, "invalid_request", state=None)
    r = get_authorize(http, [*params(client, response_type=""), ("frobnicate", "1")])
    assert_error_redirect(r, "invalid_request")
    extra = [("frobnicate", "1"), ("provider_name", ""), ("avoid_linking", "False")]
    assert_flow_started(get_authorize(http, [*params(client), *extra]))


def test_empty_state_is_not_echoed_after_consent(http, gateway):
    """OAUTH.md 20: ``state=`` (pycronofy's default) -> no ``state`` on the success redirect."""
    client = make_client(gateway)
    flow = start(http, client, state="", pkce=Pkce())
    connect(http, flow)
    query = location_query(decide(http, flow)["_location"])
    assert "state" not in query and "code" in query


def test_unknown_or_unallowed_scope_is_invalid_scope(http, gateway):
    """OAUTH.md 21."""
    client = make_client(gateway, scopes="read_account list_calendars")
    assert_error_redirect(get_authorize(http, params(client, scope="read_events admin")),
                          "invalid_scope")
    assert_error_redirect(get_authorize(http, params(client, scope="read_events")),
                          "invalid_scope")
    assert_error_redirect(get_authorize(http, params(client, scope=None)), "invalid_scope")


def test_plain_pkce_is_refused(http, gateway):
    """OAUTH.md 22."""
    client = make_client(gateway)
    pkce = Pkce()
    r = get_authorize(http, params(client, pkce, code_challenge=pkce.verifier,
                                   code_challenge_method="plain"))
    assert_error_redirect(r, "invalid_request")
    r = get_authorize(http, params(client, pkce, code_challenge_method=None))
    assert_error_redirect(r, "invalid_request")


def test_malformed_code_challenge_is_invalid_request(http, gateway):
    """OAUTH.md 23: too short, too long, outside [A-Za-z0-9-._~], or S256 without a challenge."""
    client = make_client(gateway)
    for challenge in ("a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "a" * 42 + "é",
                      "a" * 42 + "=", None):
        r = get_authorize(http, params(client, code_challenge=challenge,
                                       code_challenge_method="S256"))
        assert_error_redirect(r, "invalid_request")


def test_code_challenge_length_bounds_are_inclusive(http, gateway):
    """OAUTH.md 23: 43 and 128 characters are valid."""
    client = make_client(gateway)
    for challenge in ("A" * 43, "a-._~" * 25 + "abc"):
        assert_flow_started(get_authorize(http, params(client, code_challenge=challenge)))


def test_pkce_is_required_unless_the_client_is_flagged_legacy(http, gateway):
    """OAUTH.md 24."""
    public = make_client(gateway, public=True)
    confidential = make_client(gateway)
    legacy = make_client(gateway, legacy_no_pkce=True)
    for client in (public, confidential):
        r = get_authorize(http, params(client, code_challenge=None, code_challenge_method=None))
        assert_error_redirect(r, "invalid_request")
    assert_flow_started(get_authorize(http, params(legacy, code_challenge=None,
                                                   code_challenge_method=None)))
    # A public client can never be flagged legacy.
    assert make_client(gateway, public=True, legacy_no_pkce=True).client_id
    r = get_authorize(http, params(make_client(gateway, public=True, legacy_no_pkce=True),
                                   code_challenge=None, code_challenge_method=None))
    assert_error_redirect(r, "invalid_request")


def test_refused_consent_is_access_denied_with_state_and_iss(http, gateway):
    """OAUTH.md 25 (and 18)."""
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    connect(http, flow)
    result = decide(http, flow, "deny")
    query = location_query(result["_location"])
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"] and query["iss"] == [ISSUER]
    assert "code" not in query


def test_deny_before_connecting_is_access_denied_too(http, gateway):
    """OAUTH.md 18, 25: denying on the provider step also reports access_denied."""
    client = make_client(gateway)
    flow = start(http, client, pkce=Pkce())
    result = decide(http, flow, "deny")
    query = location_query(result["_location"])
    assert query["error"] == ["access_denied"] and query["iss"] == [ISSUER]


def test_code_only_in_the_query_of_r_and_never_a_token(http, gateway):
    """OAUTH.md 26-27: every step after a POST is a 303; the code is in the query only."""
    client = make_client(gateway)
    pkce = Pkce()
    r = get_authorize(http, params(client, pkce))
    assert r.status_code == 303
    flow = r.headers["location"]
    pages = [http.get(flow)]
    token = csrf(pages[0].text)
    for path, data in (("/provider", {"provider": "memory"}),
                       ("/connect", {"username": "jane@example.com", "password": PASSWORD})):
        r = http.post(flow + path, data={"csrf_token": token, **data})
        assert r.status_code == 303, r.text
        pages.append(http.get(flow))
    r = http.post(flow + "/decision", data={"csrf_token": token, "decision": "allow"})
    assert r.status_code == 303
    location = r.headers["location"]
    parts = urlsplit(location)
    assert not parts.fragment
    query = location_query(location)
    assert set(query) == {"code", "state", "iss"}
    code = query["code"][0]
    assert all(code not in p.text for p in pages)
    assert "access_token" not in location and "refresh_token" not in location


def test_no_cors_on_the_authorization_endpoint(http, gateway):
    """OAUTH.md 28."""
    client = make_client(gateway)
    origin = {"Origin": "https://attacker.example"}
    r = http.get("/oauth/authorize", params=params(client), headers=origin)
    assert "access-control-allow-origin" not in r.headers
    r = http.options("/oauth/authorize", headers=origin | {
        "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    r = http.post("/oauth/token", data={"grant_type": "x"}, headers=origin)
    assert "access-control-allow-origin" not in r.headers


def test_codes_are_long_random_and_unique(http, gateway):
    """OAUTH.md 29: >= 128 bits (43 url-safe characters = 256 bits here), never repeated."""
    client = make_client(gateway)
    found = {authorize(http, client, pkce=Pkce()) for _ in range(4)}
    assert len(found) == 4
    for code in found:
        assert len(code) >= 43
        assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-_")
