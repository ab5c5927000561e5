"""OAUTH.md 68-78: the refresh token grant (rotation, reuse detection, grace window).

Rotation (68-72) is what public clients always get and confidential clients opt into
(``rotate_refresh_tokens``): those tests run for both. A confidential client that has not
opted in keeps its refresh token (Cronofy's behaviour; RFC 9700 s4.14): see
test_oauth_refresh_kept.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.settings import SettingsError
from oauth_server.tables import families, tokens
from tests.support.oauth import make_client
from tests.support.oauth_extra import (
    age_family,
    age_token,
    api,
    creds,
    custom_gateway,
    grant,
    introspect,
    past,
    post,
    refresh,
    revoke,
    rotating_client,
)


def assert_invalid_grant(r) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    assert r.headers["cache-control"] == "no-store"


def assert_family_dead(http, g, *tokens_of_family: dict) -> None:
    for pair in tokens_of_family:
        assert_invalid_grant(refresh(http, g.client, pair["refresh_token"]))
        assert api(http, pair["access_token"]).status_code == 401
        if g.client.secret:  # introspection needs client authentication (OAUTH.md 86)
            assert introspect(http, g.client, pair["access_token"]).json() == {"active": False}


ROTATING = ["public", "confidential_opted_in"]


@pytest.mark.parametrize("kind", ROTATING)
def test_refresh_rotates_both_tokens(http, gateway, kind):
    """OAUTH.md 68; API.md s2.2: ``refresh_token`` is always in the response."""
    g = grant(http, gateway, rotating_client(gateway, kind))
    r = refresh(http, g.client, g.refresh_token)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    body = r.json()
    assert body["token_type"] == "bearer" and isinstance(body["expires_in"], int)
    assert body["access_token"] != g.access_token
    assert body["refresh_token"] and body["refresh_token"] != g.refresh_token
    assert body["scope"] == "read_account"
    assert api(http, body["access_token"]).status_code == 200
    # The next refresh works with the new token (what pycronofy/Node store).
    assert refresh(http, g.client, body["refresh_token"]).status_code == 200


def test_refresh_accepts_json_and_ignores_bearer_none(http, gateway):
    """OAUTH.md 50, API.md s13: the SDKs send JSON with ``Authorization: Bearer None``."""
    g = grant(http, gateway)
    r = post(http, "/oauth/token", {"grant_type": "refresh_token",
                                    "refresh_token": g.refresh_token, **creds(g.client)},
             as_json=True, headers={"Authorization": "Bearer None"})
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"]


@pytest.mark.parametrize("kind", ROTATING)
def test_reused_refresh_token_kills_the_family(settings, connector, tmp_path, kind):
    """OAUTH.md 69-70 (no grace window): the old RT is refused and the whole family dies."""
    with custom_gateway(settings, connector, tmp_path / "g0",
                        refresh_grace_seconds=0) as (gw, http):
        g = grant(http, gw, rotating_client(gw, kind))
        newer = refresh(http, g.client, g.refresh_token).json()
        assert_invalid_grant(refresh(http, g.client, g.refresh_token))
        assert_family_dead(http, g, newer, g.body)


@pytest.mark.parametrize("kind", ROTATING)
def test_reuse_after_the_grace_window_kills_the_family(http, gateway, kind):
    """OAUTH.md 69-71 (default grace): the rotation is aged past the window in the database."""
    g = grant(http, gateway, rotating_client(gateway, kind))
    newer = refresh(http, g.client, g.refresh_token).json()
    age_token(gateway, g.refresh_token, rotated_at=past(60))
    assert_invalid_grant(refresh(http, g.client, g.refresh_token))
    assert_family_dead(http, g, newer, g.body)


@pytest.mark.parametrize("kind", ROTATING)
def test_retry_inside_the_grace_window_gets_the_same_pair(http, gateway, kind):
    """OAUTH.md 71: short (a few seconds), same successor, and the family stays alive."""
    assert 0 < gateway.settings.refresh_grace_seconds <= 5
    g = grant(http, gateway, rotating_client(gateway, kind))
    first = refresh(http, g.client, g.refresh_token).json()
    again = refresh(http, g.client, g.refresh_token)
    assert again.status_code == 200
    assert (again.json()["access_token"], again.json()["refresh_token"]) == \
        (first["access_token"], first["refresh_token"])
    assert api(http, first["access_token"]).status_code == 200
    assert refresh(http, g.client, first["refresh_token"]).status_code == 200


def test_grace_window_follows_the_setting_in_real_time(settings, connector, tmp_path):
    """OAUTH.md 71: with a 1 s window, a retry after 1.2 s is reuse (the one test that sleeps)."""
    with custom_gateway(settings, connector, tmp_path / "g1",
                        refresh_grace_seconds=1) as (gw, http):
        g = grant(http, gw, rotating_client(gw, "confidential_opted_in"))
        first = refresh(http, g.client, g.refresh_token).json()
        assert refresh(http, g.client, g.refresh_token).json()["refresh_token"] == \
            first["refresh_token"]
        time.sleep(1.2)
        assert_invalid_grant(refresh(http, g.client, g.refresh_token))
        assert_family_dead(http, g, first)


def test_grace_window_is_bounded_by_settings(settings):
    """OAUTH.md 71: the window cannot be configured beyond 30 s."""
    with pytest.raises(SettingsError):
        settings.replace(refresh_grace_seconds=31)


def _parallel_refresh(http, g, n: int = 8):
    barrier = threading.Barrier(n)

    def one(_: int):
        barrier.wait()
        return refresh(http, g.client, g.refresh_token)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.parametrize("kind", ROTATING)
def test_parallel_refreshes_share_one_pair_inside_the_grace_window(http, gateway, kind):
    """OAUTH.md 72: no 5xx, and every success carries the same pair."""
    g = grant(http, gateway, rotating_client(gateway, kind))
    results = _parallel_refresh(http, g)
    statuses = [r.status_code for r in results]
    assert all(s < 500 for s in statuses), statuses
    pairs = {(r.json()["access_token"], r.json()["refresh_token"])
             for r in results if r.status_code == 200}
    assert len(pairs) == 1, statuses
    assert statuses.count(200) == len(statuses), statuses


@pytest.mark.parametrize("kind", ROTATING)
def test_parallel_refreshes_without_grace_give_exactly_one_200(settings, connector, tmp_path,
                                                                kind):
    """OAUTH.md 72 (grace 0): exactly one success, the rest invalid_grant, no 5xx."""
    with custom_gateway(settings, connector, tmp_path / "g0",
                        refresh_grace_seconds=0) as (gw, http):
        g = grant(http, gw, rotating_client(gw, kind))
        results = _parallel_refresh(http, g)
    statuses = [r.status_code for r in results]
    assert all(s < 500 for s in statuses), statuses
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)


def test_narrower_scope_on_refresh(http, gateway):
    """OAUTH.md 73-74: the response states the narrower scope; the new RT keeps the grant's."""
    client = make_client(gateway)
    g = grant(http, gateway, client, scope="read_account list_calendars")
    assert g.body["scope"] == "read_account list_calendars"
    narrow = refresh(http, client, g.refresh_token, scope="read_account")
    assert narrow.status_code == 200
    assert narrow.json()["scope"] == "read_account"
    assert api(http, narrow.json()["access_token"], "/v1/account").status_code == 200
    full = refresh(http, client, narrow.json()["refresh_token"])
    assert full.status_code == 200
    assert full.json()["scope"] == "read_account list_calendars"
    info = introspect(http, client, full.json()["refresh_token"]).json()
    assert info["active"] and info["scope"] == "read_account list_calendars"


def test_scope_beyond_the_grant_is_invalid_scope(http, gateway):
    """OAUTH.md 75."""
    client = make_client(gateway)
    g = grant(http, gateway, client, scope="read_account")
    for scope in ("read_account read_events", "read_write", "admin", 'read_account "é'):
        r = refresh(http, client, g.refresh_token, scope=scope)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_scope"
    assert refresh(http, client, g.refresh_token).status_code == 200


def test_refresh_token_is_bound_to_its_client(http, gateway):
    """OAUTH.md 76."""
    g = grant(http, gateway)
    other = make_client(gateway)
    assert_invalid_grant(refresh(http, other, g.refresh_token))
    assert refresh(http, g.client, g.refresh_token).status_code == 200


def test_refresh_errors(http, gateway):
    """OAUTH.md 77: wrong secret 401; unknown RT and an AT as RT -> invalid_grant."""
    g = grant(http, gateway)
    r = refresh(http, g.client, g.refresh_token, client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert_invalid_grant(refresh(http, g.client, "no-such-token"))
    assert_invalid_grant(refresh(http, g.client, g.access_token))
    r = post(http, "/oauth/token", {"grant_type": "refresh_token", **creds(g.client)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # None of this hurt the legitimate family.
    assert refresh(http, g.client, g.refresh_token).status_code == 200


def test_refresh_tokens_have_idle_and_absolute_lifetimes(http, gateway):
    """OAUTH.md 78 (white-box): token rows expire after the idle TTL, families after the
    absolute TTL; both are enforced."""
    s = gateway.settings
    lifetimes = gateway.oauth.store.lifetimes
    assert (lifetimes.refresh, lifetimes.refresh_idle) == \
        (s.refresh_token_ttl, s.refresh_token_idle_ttl)
    assert s.refresh_token_idle_ttl < s.refresh_token_ttl
    g = grant(http, gateway)
    digest = gateway.oauth.server.keys.token_digest(g.refresh_token)
    with gateway.engine.connect() as conn:
        row = conn.execute(select(tokens.c.expires_at, families.c.expires_at.label("fam"))
                           .join(families, families.c.id == tokens.c.family_id)
                           .where(tokens.c.token_hash == digest)).one()
    now = datetime.now(UTC)

    def aware(value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    slack = timedelta(seconds=60)
    assert abs(aware(row.expires_at) - (now + timedelta(seconds=s.refresh_token_idle_ttl))) < slack
    assert abs(aware(row.fam) - (now + timedelta(seconds=s.refresh_token_ttl))) < slack

    idle = grant(http, gateway)
    age_token(gateway, idle.refresh_token, expires_at=past())
    assert_invalid_grant(refresh(http, idle.client, idle.refresh_token))
    absolute = grant(http, gateway)
    age_family(gateway, absolute.refresh_token, expires_at=past())
    assert_invalid_grant(refresh(http, absolute.client, absolute.refresh_token))


def test_grant_ends_when_the_user_revokes_or_the_client_is_deleted(http, gateway):
    """OAUTH.md 78: revocation and client deletion end the grant."""
    g = grant(http, gateway)
    assert revoke(http, g.client, token=g.refresh_token).status_code == 200
    assert_invalid_grant(refresh(http, g.client, g.refresh_token))
    g = grant(http, gateway)
    assert gateway.delete_client(g.client.client_id)
    r = refresh(http, g.client, g.refresh_token)
    assert r.status_code == 401  # the client itself is gone
    assert api(http, g.access_token).status_code == 401


def test_grant_ends_when_its_last_upstream_link_is_removed(http, gateway):
    """OAUTH.md 78. Decision: revoking one of several profiles keeps the authorization (API.md
    s2.4); revoking the last one ends it, as an account without a calendar is kept for nothing."""
    g = grant(http, gateway)
    profile_id = g.body["linking_profile"]["profile_id"]
    r = api(http, g.access_token, f"/v1/profiles/{profile_id}/revoke", method="POST")
    assert r.status_code == 202
    assert_invalid_grant(refresh(http, g.client, g.refresh_token))
