"""OAUTH.md 89-92: bearer tokens at the calendar API (RFC 6750), and the identity endpoints'
scope checks and shapes (API.md s2.4, s3)."""

from __future__ import annotations

from tests.support.oauth import Pkce, authorize, make_client
from tests.support.oauth_extra import age_token, api, grant, past, revoke


def assert_invalid_token(r) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "invalid_token"}
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calgate"')
    assert 'error="invalid_token"' in challenge


def test_valid_bearer_token_is_served(http, gateway):
    """OAUTH.md 89."""
    g = grant(http, gateway)
    for path in ("/v1/userinfo", "/v1/account", "/v1/profiles"):
        assert api(http, g.access_token, path).status_code == 200


def test_no_token_gets_a_bare_bearer_challenge(http, gateway):
    """OAUTH.md 89: 401, ``Bearer realm=...`` and no ``error`` attribute."""
    for path in ("/v1/userinfo", "/v1/account", "/v1/profiles"):
        r = api(http, None, path)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer realm=")
        assert "error=" not in challenge


def test_invalid_expired_or_revoked_token_is_invalid_token(http, gateway):
    """OAUTH.md 90 (first half)."""
    assert_invalid_token(api(http, "no-such-token"))
    g = grant(http, gateway)
    age_token(gateway, g.access_token, expires_at=past())
    assert_invalid_token(api(http, g.access_token))
    g = grant(http, gateway)
    revoke(http, g.client, token=g.refresh_token)
    assert_invalid_token(api(http, g.access_token))


def test_missing_scope_is_403_insufficient_scope(http, gateway):
    """OAUTH.md 90 (second half), API.md decisions: /v1/account needs read_account."""
    client = make_client(gateway, scopes="read_write")
    g = grant(http, gateway, client, scope="list_calendars")
    r = api(http, g.access_token, "/v1/account")
    assert r.status_code == 403
    assert r.json() == {"error": "insufficient_scope", "required_scope": "read_account"}
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read_account"' in challenge
    # Identity endpoints that need no particular scope still answer.
    assert api(http, g.access_token, "/v1/profiles").status_code == 200
    body = api(http, g.access_token, "/v1/userinfo").json()
    assert "email" not in body  # read_account is what reveals the email address


def test_aggregate_scope_carries_read_account(http, gateway):
    """API.md s2.6: read_only includes read_account."""
    client = make_client(gateway, scopes="read_write")
    g = grant(http, gateway, client, scope="read_only")
    assert api(http, g.access_token, "/v1/account").status_code == 200


def test_access_token_in_the_query_is_ignored(http, gateway):
    """OAUTH.md 91."""
    g = grant(http, gateway)
    r = http.get("/v1/userinfo", params={"access_token": g.access_token})
    assert r.status_code == 401
    assert "error=" not in r.headers["www-authenticate"]
    r = http.post("/v1/profiles/x/revoke", data={"access_token": g.access_token})
    assert r.status_code == 401


def test_refresh_tokens_and_codes_are_not_bearer_tokens(http, gateway):
    """OAUTH.md 92 (first half)."""
    g = grant(http, gateway)
    assert_invalid_token(api(http, g.refresh_token))
    client = make_client(gateway)
    code = authorize(http, client, pkce=Pkce())
    assert_invalid_token(api(http, code))


def test_malformed_authorization_headers_are_refused(http, gateway):
    """OAUTH.md 92 (second half): 400/401, never 2xx or 5xx."""
    g = grant(http, gateway)
    for header in ("Bearer", "Bearer ", f"Bearer {g.access_token} extra", "Basic dXNlcjpwYXNz",
                   g.access_token, f"Token {g.access_token}", "Bearer None", "Bearer \t",
                   f"Bearer  {g.access_token}x", "Bearer é"):
        r = http.get("/v1/userinfo", headers={"Authorization": header.encode()})
        assert r.status_code in (400, 401), (header, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer")
    # Scheme names are case-insensitive (RFC 9110 s11.1).
    r = http.get("/v1/userinfo", headers={"Authorization": f"bearer {g.access_token}"})
    assert r.status_code == 200


def test_account_shape(http, gateway):
    """API.md s3.1: ``account`` wrapper and ``sub``."""
    g = grant(http, gateway)
    body = api(http, g.access_token, "/v1/account").json()
    assert body["sub"] == g.sub
    account = body["account"]
    assert account["account_id"] == g.sub
    assert account["email"] == "jane@example.com"
    assert account["scope"] == "read_account"
    assert set(account) >= {"account_id", "email", "name", "scope", "default_tzid"}


def test_profiles_shape(http, gateway):
    """API.md s3.3: ``profiles`` wrapper; the linked profile with its fields."""
    g = grant(http, gateway)
    body = api(http, g.access_token, "/v1/profiles").json()
    [profile] = body["profiles"]
    linking = g.body["linking_profile"]
    assert profile["profile_id"] == linking["profile_id"]
    assert profile["provider_name"] == linking["provider_name"]
    assert profile["profile_name"] == "jane@example.com"
    assert profile["profile_connected"] is True
    assert isinstance(profile["profile_initial_sync_required"], bool)
    assert "provider_service" in profile
    assert "profile_relink_url" not in profile  # only when disconnected


def test_profile_revoke(http, gateway):
    """API.md s2.4: 202 with an empty body; unknown -> 404. Revoking the account's last
    profile ends the authorization too (OAUTH.md 78; one of several: see test_erasure)."""
    g = grant(http, gateway)
    profile_id = g.body["linking_profile"]["profile_id"]
    r = api(http, g.access_token, "/v1/profiles/pro_unknown/revoke", method="POST")
    assert r.status_code == 404 and r.json() == {"error": "not_found"}
    r = http.post(f"/v1/profiles/{profile_id}/revoke", json={},
                  headers={"Authorization": f"Bearer {g.access_token}"})
    assert r.status_code == 202 and r.content == b""
    assert api(http, g.access_token, "/v1/profiles").status_code == 401
    assert api(http, None, f"/v1/profiles/{profile_id}/revoke", method="POST").status_code == 401


def test_profile_revoke_cannot_touch_another_account(http, gateway):
    """API.md s2.4: a profile of another account is 'unknown' (404), not revoked."""
    g = grant(http, gateway)
    other = grant(http, gateway, username="john@example.com", separate=True)
    assert other.sub != g.sub
    profile_id = other.body["linking_profile"]["profile_id"]
    r = api(http, g.access_token, f"/v1/profiles/{profile_id}/revoke", method="POST")
    assert r.status_code == 404
    assert len(api(http, other.access_token, "/v1/profiles").json()["profiles"]) == 1
