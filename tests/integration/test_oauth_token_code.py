"""OAUTH.md 49-67: the authorization code grant at the token endpoint."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.settings import SettingsError
from tests.support.oauth import Pkce, authorize, exchange, make_client
from tests.support.oauth_extra import (
    age_codes,
    api,
    creds,
    grant,
    introspect,
    post,
    refresh,
    rotating_client,
)

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def fresh_code(http, gateway, client=None, **kwargs):
    client = client or make_client(gateway, **kwargs)
    pkce = Pkce()
    return client, pkce, authorize(http, client, pkce=pkce)


def code_form(client, code, pkce=None, **extra):
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, **creds(client)}
    if pkce is not None:
        form["code_verifier"] = pkce.verifier
    return {k: v for k, v in (form | extra).items() if v is not None}


def assert_token_error(r, status: int, error: str | tuple[str, ...]) -> None:
    """OAUTH.md 65: every token-endpoint error is JSON with Cache-Control: no-store."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    errors = (error,) if isinstance(error, str) else error
    assert r.json()["error"] in errors, r.json()
    assert "access_token" not in r.json()


def test_exchange_returns_the_rfc_6749_token_response(http, gateway):
    """OAUTH.md 49."""
    client, pkce, code = fresh_code(http, gateway)
    r = post(http, "/oauth/token", code_form(client, code, pkce))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 2**31 - 1
    assert body["access_token"] and body["refresh_token"]
    assert body["scope"] == "read_account"


def test_exchange_carries_the_cronofy_fields_and_accepts_json(http, gateway):
    """OAUTH.md 50, API.md s2.2: ``sub``, ``account_id``, ``linking_profile``; JSON body."""
    client, pkce, code = fresh_code(http, gateway)
    r = post(http, "/oauth/token", code_form(client, code, pkce), as_json=True,
             headers={"Authorization": "Bearer None"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sub"] == body["account_id"] and body["sub"].startswith("acc_")
    profile = body["linking_profile"]
    assert profile["provider_name"] == "memory"
    assert profile["profile_id"].startswith("pro_")
    assert profile["profile_name"] == "jane@example.com"
    assert "provider_service" in profile


def test_json_body_with_a_charset_and_extra_keys_is_accepted(http, gateway):
    """OAUTH.md 50, API.md s13: Node forwards config keys (e.g. ``refresh_token``) too."""
    client, pkce, code = fresh_code(http, gateway)
    r = http.post("/oauth/token", json=code_form(client, code, pkce, refresh_token="stale"),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text


def test_second_redemption_fails_and_revokes_the_first_tokens(http, gateway):
    """OAUTH.md 51-52."""
    client, pkce, code = fresh_code(http, gateway)
    first = post(http, "/oauth/token", code_form(client, code, pkce)).json()
    assert api(http, first["access_token"]).status_code == 200
    second = post(http, "/oauth/token", code_form(client, code, pkce))
    assert_token_error(second, 400, "invalid_grant")
    assert api(http, first["access_token"]).status_code == 401
    assert introspect(http, client, first["access_token"]).json() == {"active": False}
    assert introspect(http, client, first["refresh_token"]).json() == {"active": False}
    assert_token_error(refresh(http, client, first["refresh_token"]), 400, "invalid_grant")


def test_failed_replays_do_not_revoke_the_legitimate_tokens(http, gateway):
    """OAUTH.md 53: a used code with a wrong secret or verifier is refused without effect."""
    client, pkce, code = fresh_code(http, gateway)
    first = post(http, "/oauth/token", code_form(client, code, pkce)).json()
    r = post(http, "/oauth/token", code_form(client, code, pkce, client_secret="wrong"))
    assert_token_error(r, 401, "invalid_client")
    r = post(http, "/oauth/token", code_form(client, code, Pkce()))
    assert_token_error(r, 400, "invalid_grant")
    r = post(http, "/oauth/token", code_form(client, code, None))
    assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    r = post(http, "/oauth/token", code_form(client, code, pkce,
                                             redirect_uri="https://app.example/other"))
    assert_token_error(r, 400, "invalid_grant")
    other = make_client(gateway)
    r = post(http, "/oauth/token", code_form(client, code, pkce) | creds(other))
    assert_token_error(r, 400, "invalid_grant")
    assert api(http, first["access_token"]).status_code == 200
    assert refresh(http, client, first["refresh_token"]).status_code == 200


def test_code_is_bound_to_its_client(http, gateway):
    """OAUTH.md 54."""
    client, pkce, code = fresh_code(http, gateway)
    other = make_client(gateway)
    r = post(http, "/oauth/token", code_form(client, code, pkce) | creds(other))
    assert_token_error(r, 400, "invalid_grant")
    # ... and still redeemable by its own client afterwards.
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_redirect_uri_must_be_the_authorized_one(http, gateway):
    """OAUTH.md 55-56."""
    client, pkce, code = fresh_code(http, gateway)
    for uri in ("https://app.example/cb/", "https://app.example/other", "https://APP.example/cb"):
        r = post(http, "/oauth/token", code_form(client, code, pkce, redirect_uri=uri))
        assert_token_error(r, 400, "invalid_grant")
    r = post(http, "/oauth/token", code_form(client, code, pkce, redirect_uri=None))
    assert_token_error(r, 400, ("invalid_grant", "invalid_request"))
    r = post(http, "/oauth/token", code_form(client, code, pkce, redirect_uri=""))
    assert_token_error(r, 400, ("invalid_grant", "invalid_request"))
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_pkce_verifier_is_checked(http, gateway):
    """OAUTH.md 57-59: wrong, missing, or the challenge itself as verifier."""
    client, pkce, code = fresh_code(http, gateway)
    r = post(http, "/oauth/token", code_form(client, code, Pkce()))
    assert_token_error(r, 400, "invalid_grant")
    r = post(http, "/oauth/token", code_form(client, code, None))
    assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    r = post(http, "/oauth/token", code_form(client, code, None, code_verifier=pkce.challenge))
    assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    for junk in ("short", "x" * 129, pkce.verifier + "é"):
        r = post(http, "/oauth/token", code_form(client, code, None, code_verifier=junk))
        assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_verifier_for_a_code_without_challenge_is_refused(http, gateway):
    """OAUTH.md 60: PKCE downgrade (a legacy client's code, issued without a challenge)."""
    client = make_client(gateway, legacy_no_pkce=True)
    code = authorize(http, client, pkce=None)
    r = post(http, "/oauth/token", code_form(client, code, Pkce()))
    assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    assert post(http, "/oauth/token", code_form(client, code)).status_code == 200


def test_legacy_client_that_sends_pkce_is_held_to_it(http, gateway):
    """OAUTH.md 58: the legacy flag only permits omitting PKCE, never skipping the check."""
    client = make_client(gateway, legacy_no_pkce=True)
    pkce = Pkce()
    code = authorize(http, client, pkce=pkce)
    r = post(http, "/oauth/token", code_form(client, code))
    assert_token_error(r, 400, ("invalid_request", "invalid_grant"))
    r = post(http, "/oauth/token", code_form(client, code, Pkce()))
    assert_token_error(r, 400, "invalid_grant")
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_expired_code_is_invalid_grant(http, gateway):
    """OAUTH.md 61: 60 s by default (never over 10 min); aged in the database here."""
    assert gateway.oauth.store.lifetimes.code == gateway.settings.code_ttl == 60
    with pytest.raises(SettingsError):
        gateway.settings.replace(code_ttl=601)  # never over 10 minutes
    client, pkce, code = fresh_code(http, gateway)
    age_codes(gateway)
    r = post(http, "/oauth/token", code_form(client, code, pkce))
    assert_token_error(r, 400, "invalid_grant")


def test_unknown_code_and_malformed_requests(http, gateway):
    """OAUTH.md 62: unknown code -> invalid_grant; missing code/grant_type or a repeated
    parameter -> invalid_request."""
    client, pkce, code = fresh_code(http, gateway)
    r = post(http, "/oauth/token", code_form(client, "no-such-code", pkce))
    assert_token_error(r, 400, "invalid_grant")
    without_code = {k: v for k, v in code_form(client, code, pkce).items() if k != "code"}
    r = post(http, "/oauth/token", without_code)
    assert_token_error(r, 400, "invalid_request")
    r = post(http, "/oauth/token", code_form(client, code, pkce, grant_type=None))
    assert_token_error(r, 400, "invalid_request")
    form = [*list(code_form(client, code, pkce).items()), ("code", "other")]
    r = http.post("/oauth/token", content="&".join(f"{k}={v}" for k, v in form),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_token_error(r, 400, "invalid_request")
    r = http.post("/oauth/token", content=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert_token_error(r, 400, "invalid_request")
    r = http.post("/oauth/token", json=["a", "list"])
    assert_token_error(r, 400, "invalid_request")
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_other_grant_types_are_unsupported(http, gateway):
    """OAUTH.md 63."""
    client = make_client(gateway)
    for grant_type in ("password", "client_credentials", "implicit",
                       "urn:ietf:params:oauth:grant-type:device_code",
                       "urn:ietf:params:oauth:grant-type:jwt-bearer", 'x"é'):
        r = post(http, "/oauth/token", {"grant_type": grant_type, "username": "u",
                                        "password": "p", **creds(client)})
        assert_token_error(r, 400, ("unsupported_grant_type", "unauthorized_client"))


def test_get_on_the_token_endpoint_never_issues_tokens(http, gateway):
    """OAUTH.md 64."""
    client, pkce, code = fresh_code(http, gateway)
    r = http.get("/oauth/token", params=code_form(client, code, pkce))
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"] == "invalid_request"  # OAUTH.md 65: JSON, never cached
    assert r.headers["cache-control"] == "no-store"
    assert "access_token" not in r.text
    assert post(http, "/oauth/token", code_form(client, code, pkce)).status_code == 200


def test_parallel_redemptions_issue_at_most_one_pair(http, gateway):
    """OAUTH.md 66: atomic consumption in the database; no 5xx."""
    client, pkce, code = fresh_code(http, gateway)
    form = code_form(client, code, pkce)
    n = 8
    barrier = threading.Barrier(n)

    def redeem(_: int):
        barrier.wait()
        return post(http, "/oauth/token", form)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(redeem, range(n)))
    statuses = [r.status_code for r in results]
    assert all(s < 500 for s in statuses), statuses
    wins = [r.json() for r in results if r.status_code == 200]
    assert len(wins) == 1, statuses  # all requests were valid: exactly one wins
    assert len({w["access_token"] for w in wins}) <= 1
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)


def test_tokens_are_long_random_unique_and_opaque(http, gateway):
    """OAUTH.md 67: >= 128 bits, unique, no user data inside (a rotating client, so that
    each refresh issues a new refresh token too)."""
    client = rotating_client(gateway)
    seen: set[str] = set()
    for username in ("jane@example.com", "john@example.com"):
        g = grant(http, gateway, client, username=username)
        r = refresh(http, client, g.refresh_token).json()
        for token in (g.access_token, g.refresh_token, r["access_token"], r["refresh_token"]):
            assert len(token) >= 43 and set(token) <= URLSAFE
            for fact in (username, g.sub, client.client_id, "read_account",
                         g.body["linking_profile"]["profile_id"]):
                assert fact not in token
            seen.add(token)
    assert len(seen) == 8


def test_exchange_twice_via_helpers_matches_cronofy_shape(http, gateway):
    """OAUTH.md 49-50 via the shared helper (form body, client credentials in the body)."""
    client, pkce, code = fresh_code(http, gateway)
    body = exchange(http, client, code, pkce)
    assert body["_status"] == 200
    assert set(body) >= {"access_token", "token_type", "expires_in", "refresh_token", "scope",
                         "sub", "account_id", "linking_profile"}
