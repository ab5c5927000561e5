"""OAUTH.md 79-88: revocation (RFC 7009 and Cronofy's forms) and introspection (RFC 7662)."""

from __future__ import annotations

from sqlalchemy import select

from gateway.persistence.tables import accounts, profiles
from tests.support.oauth import Pkce, authorize, exchange, make_client
from tests.support.oauth_extra import (
    age_token,
    api,
    basic,
    creds,
    grant,
    introspect,
    past,
    post,
    refresh,
    revoke,
    rotating_client,
)


def assert_revoked_ok(r) -> None:
    """RFC 7009 s2.2 / API.md s2.3: 200 with an empty body."""
    assert r.status_code == 200, r.text
    assert r.content == b""


def assert_grant_dead(http, gateway, g) -> None:
    """The whole authorization is gone: tokens refused, and the host erased the subject."""
    r = refresh(http, g.client, g.refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = api(http, g.access_token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert introspect(http, g.client, g.access_token).json() == {"active": False}
    with gateway.engine.connect() as conn:
        assert conn.execute(select(accounts).where(accounts.c.id == g.sub)).first() is None
        assert conn.execute(select(profiles).where(profiles.c.account_id == g.sub)).first() \
            is None


def assert_grant_alive(http, g) -> None:
    assert api(http, g.access_token).status_code == 200
    assert introspect(http, g.client, g.access_token).json()["active"] is True


def test_revoking_the_refresh_token_ends_the_grant(http, gateway):
    """OAUTH.md 79."""
    g = grant(http, gateway)
    bystander = grant(http, gateway, g.client, username="john@example.com", separate=True)
    assert_revoked_ok(revoke(http, g.client, token=g.refresh_token,
                             token_type_hint="refresh_token"))
    assert_grant_dead(http, gateway, g)
    assert_grant_alive(http, bystander)


def test_revocation_erases_upstream_credentials_and_pending_codes(http, gateway):
    """OAUTH.md 79, policy: the host erases the subject's credentials, and a code already
    issued for the same subject (same browser, linked account) can no longer be redeemed."""
    g = grant(http, gateway)
    profile_id = g.body["linking_profile"]["profile_id"]
    path = f"profiles/{profile_id}/credentials"
    assert gateway.secrets.find(path) is not None
    pkce = Pkce()
    pending_code = authorize(http, g.client, pkce=pkce, username="john@example.com")
    assert_revoked_ok(revoke(http, g.client, token=g.refresh_token))
    assert gateway.secrets.find(path) is None
    body = exchange(http, g.client, pending_code, pkce)
    assert body["_status"] == 400 and body["error"] == "invalid_grant"


def test_revoking_the_access_token_ends_the_grant(http, gateway):
    """OAUTH.md 80 (policy: revocation ends the whole authorization)."""
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, token=g.access_token,
                             token_type_hint="access_token"))
    r = api(http, g.access_token)
    assert r.status_code == 401 and r.json() == {"error": "invalid_token"}
    assert_grant_dead(http, gateway, g)


def test_unknown_or_already_revoked_token_is_200(http, gateway):
    """OAUTH.md 81."""
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, token="no-such-token"))
    assert_revoked_ok(revoke(http, g.client, token=g.refresh_token))
    assert_revoked_ok(revoke(http, g.client, token=g.refresh_token))
    assert_revoked_ok(revoke(http, g.client, token=g.access_token))


def test_wrong_type_hint_still_revokes(http, gateway):
    """OAUTH.md 82."""
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, token=g.refresh_token,
                             token_type_hint="access_token"))
    assert_grant_dead(http, gateway, g)
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, token=g.access_token, token_type_hint="bogus"))
    assert_grant_dead(http, gateway, g)


def test_revocation_ends_every_profile_of_a_linked_account(http, gateway):
    """OAUTH.md 79, policy: the same browser links a second calendar into the same account
    (Cronofy linking); revoking either token erases the account with both profiles."""
    g = grant(http, gateway)
    second = grant(http, gateway, g.client, username="john@example.com")
    assert second.sub == g.sub
    assert len(api(http, g.access_token, "/v1/profiles").json()["profiles"]) == 2
    assert_revoked_ok(revoke(http, g.client, token=second.access_token))
    assert_grant_dead(http, gateway, g)
    assert_grant_dead(http, gateway, second)


def test_revocation_errors(http, gateway):
    """OAUTH.md 83: no token -> invalid_request; wrong secret -> 401; GET -> 405."""
    g = grant(http, gateway)
    r = revoke(http, g.client)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert r.headers["cache-control"] == "no-store"
    r = revoke(http, g.client, token=g.refresh_token, client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = post(http, "/oauth/token/revoke", {"token": g.refresh_token})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = http.get("/oauth/token/revoke", params={"token": g.refresh_token, **creds(g.client)})
    assert r.status_code == 405 and r.json()["error"] == "invalid_request"
    assert_grant_alive(http, g)


def test_another_client_cannot_revoke(http, gateway):
    """OAUTH.md 84: silent 200, A's grant untouched."""
    g = grant(http, gateway)
    other = make_client(gateway)
    for form in ({"token": g.refresh_token}, {"token": g.access_token}, {"sub": g.sub},
                 {"refresh_token": g.refresh_token}):
        r = revoke(http, other, **form)
        assert r.status_code in (200, 400), r.text
    assert_grant_alive(http, g)
    assert refresh(http, g.client, g.refresh_token).status_code == 200


def test_revocation_with_basic_authentication(http, gateway):
    """OAUTH.md 79, 85: Basic works like body credentials."""
    g = grant(http, gateway)
    r = post(http, "/oauth/token/revoke", {"token": g.refresh_token},
             headers={"Authorization": basic(g.client.client_id, g.client.secret)})
    assert_revoked_ok(r)
    assert_grant_dead(http, gateway, g)


def test_cronofy_revoke_with_json_body_and_access_token(http, gateway):
    """OAUTH.md 85, API.md s2.3: pycronofy sends JSON with the access token."""
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, as_json=True, token=g.access_token))
    assert_grant_dead(http, gateway, g)


def test_cronofy_revoke_by_sub(http, gateway):
    """OAUTH.md 85: ``sub=acc_...`` revokes the whole authorization (JSON, ``Bearer None``)."""
    g = grant(http, gateway)
    r = post(http, "/oauth/token/revoke", {**creds(g.client), "sub": g.sub}, as_json=True,
             headers={"Authorization": "Bearer None"})
    assert_revoked_ok(r)
    assert_grant_dead(http, gateway, g)


def test_cronofy_revoke_with_only_refresh_token(http, gateway):
    """OAUTH.md 85, API.md s2.3: Node without ``token`` sends ``refresh_token`` only."""
    g = grant(http, gateway)
    assert_revoked_ok(revoke(http, g.client, as_json=True, refresh_token=g.refresh_token))
    assert_grant_dead(http, gateway, g)


def test_token_wins_over_sub(http, gateway):
    """API.md s2.3: ``token`` wins if both are sent."""
    g = grant(http, gateway)
    other = grant(http, gateway, g.client, username="john@example.com", separate=True)
    assert_revoked_ok(revoke(http, g.client, token=g.access_token, sub=other.sub))
    assert_grant_dead(http, gateway, g)
    assert_grant_alive(http, other)


def test_expired_access_token_is_still_accepted_for_revocation(http, gateway):
    """OAUTH.md 85."""
    g = grant(http, gateway)
    age_token(gateway, g.access_token, expires_at=past())
    assert api(http, g.access_token).status_code == 401
    assert_revoked_ok(revoke(http, g.client, as_json=True, token=g.access_token))
    assert_grant_dead(http, gateway, g)


def test_introspection_needs_client_authentication(http, gateway):
    """OAUTH.md 86."""
    g = grant(http, gateway)
    r = post(http, "/oauth/introspect", {"token": g.access_token})
    assert r.status_code in (400, 401)
    assert "active" not in r.json() and g.sub not in r.text
    r = post(http, "/oauth/introspect", {"token": g.access_token, "client_id": g.client.client_id,
                                         "client_secret": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = post(http, "/oauth/introspect", {"token": g.access_token},
             headers={"Authorization": basic(g.client.client_id, "wrong")})
    assert r.status_code == 401 and 'realm="calgate"' in r.headers["www-authenticate"]


def test_introspection_of_a_live_access_token(http, gateway):
    """OAUTH.md 87."""
    g = grant(http, gateway)
    r = introspect(http, g.client, g.access_token)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["active"] is True
    assert body["scope"] == "read_account"
    assert body["client_id"] == g.client.client_id
    assert body["sub"] == g.sub
    assert isinstance(body["exp"], int)
    assert body["token_type"].lower() == "bearer"
    r = post(http, "/oauth/introspect", {"token": g.access_token},
             headers={"Authorization": basic(g.client.client_id, g.client.secret)})
    assert r.json()["active"] is True


def test_introspection_of_dead_or_foreign_tokens_is_just_inactive(http, gateway):
    """OAUTH.md 88: unknown, expired, revoked, or another client's token."""
    g = grant(http, gateway, rotating_client(gateway))
    other = make_client(gateway)
    inactive = {"active": False}
    assert introspect(http, g.client, "no-such-token").json() == inactive
    assert introspect(http, other, g.access_token).json() == inactive
    assert introspect(http, other, g.refresh_token).json() == inactive
    rotated = refresh(http, g.client, g.refresh_token).json()
    assert introspect(http, g.client, g.refresh_token).json() == inactive  # rotated out
    age_token(gateway, rotated["access_token"], expires_at=past())
    assert introspect(http, g.client, rotated["access_token"]).json() == inactive
    assert introspect(http, g.client, rotated["refresh_token"]).json()["active"] is True
    revoke(http, g.client, token=rotated["refresh_token"])
    assert introspect(http, g.client, rotated["refresh_token"]).json() == inactive
    assert introspect(http, g.client, g.access_token).json() == inactive
