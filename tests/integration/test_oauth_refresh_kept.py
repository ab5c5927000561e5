"""Refresh tokens as Cronofy issues them: a confidential client keeps one refresh token for
the life of the grant (RFC 9700 s4.14: it authenticates with its secret at every refresh).

An app that stores only the refresh token of the code exchange refreshes hourly for 30 days
on the grants store's simulated clock (no sleeping), with pycronofy against a real uvicorn
server for the first day and over HTTP for all 720 refreshes. Idle and absolute expiry still
end such a grant. Rotation (public and opted-in clients) is tested in test_oauth_refresh.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.app import create_app
from oauth_server.tables import tokens
from tests.support.oauth import authorize, make_client
from tests.support.oauth_extra import api, grant, introspect, refresh
from tests.support.served import sdk, serving

HOUR = timedelta(hours=1)


@dataclass
class SimulatedClock:
    """The grants store's clock, moved on by the test."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def clock(gateway) -> SimulatedClock:
    simulated = SimulatedClock()
    gateway.oauth.store.clock = simulated
    return simulated


def family_rows(gateway, refresh_token: str) -> int:
    digest = gateway.oauth.server.keys.token_digest(refresh_token)
    with gateway.engine.connect() as conn:
        family = conn.execute(select(tokens.c.family_id)
                              .where(tokens.c.token_hash == digest)).scalar_one()
        return int(conn.execute(select(func.count()).select_from(tokens)
                                .where(tokens.c.family_id == family)).scalar_one())


def test_a_confidential_client_keeps_its_refresh_token(http, gateway):
    """API.md s2.2: a refresh answers the same ``refresh_token`` and a new access token. The
    previous access token stays valid until it expires; the one before it ends (as with
    rotation, a family keeps at most the current and the previous access token)."""
    g = grant(http, gateway)
    assert not gateway.oauth.registry.find(g.client.client_id).rotates_refresh_tokens
    first = refresh(http, g.client, g.refresh_token)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert body["refresh_token"] == g.refresh_token
    assert body["access_token"] != g.access_token and body["token_type"] == "bearer"
    assert api(http, body["access_token"], "/v1/account").status_code == 200
    second = refresh(http, g.client, g.refresh_token).json()
    assert second["refresh_token"] == g.refresh_token
    # (Not asked before: a validation is trusted for CALGATE_AUTH_CACHE_SECONDS.)
    assert api(http, g.access_token, "/v1/account").status_code == 401  # two refreshes old
    for live in (body, second):
        assert api(http, live["access_token"], "/v1/account").status_code == 200
    info = introspect(http, g.client, g.refresh_token).json()
    assert info["active"] and info["token_type"] == "refresh_token"
    assert family_rows(gateway, g.refresh_token) == 3


def test_parallel_refreshes_of_a_kept_token_all_succeed(http, gateway):
    """OAUTH.md 72 for a kept token: no 5xx, every answer 200 with the same refresh token."""
    g = grant(http, gateway)
    barrier = threading.Barrier(6)

    def one(_: int):
        barrier.wait()
        return refresh(http, g.client, g.refresh_token)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    assert {r.json()["refresh_token"] for r in results} == {g.refresh_token}
    assert len({r.json()["access_token"] for r in results}) == 6
    assert refresh(http, g.client, g.refresh_token).status_code == 200


def test_thirty_days_of_hourly_refreshes_with_the_first_refresh_token(http, gateway, clock):
    """The app stores only what the code exchange gave it. Every hour its access token has
    expired (refused), it refreshes with the first refresh token, and the new access token
    reads /v1/account; housekeeping runs daily and the family stays at three rows."""
    g = grant(http, gateway)
    previous = g.access_token
    for hour in range(1, 30 * 24 + 1):
        clock.advance(HOUR)
        assert api(http, previous, "/v1/account").status_code == 401, hour
        r = refresh(http, g.client, g.refresh_token)
        assert r.status_code == 200, (hour, r.text)
        assert r.json()["refresh_token"] == g.refresh_token
        previous = r.json()["access_token"]
        assert api(http, previous, "/v1/account").status_code == 200, hour
        if hour % 24 == 0:
            gateway.oauth.store.delete_expired_tokens()
    assert family_rows(gateway, g.refresh_token) <= 3


def test_idle_expiry_still_ends_a_kept_refresh_token(http, gateway, clock):
    """OAUTH.md 78: each use restarts the idle expiry; unused that long, the token is dead."""
    idle = timedelta(seconds=gateway.settings.refresh_token_idle_ttl)
    g = grant(http, gateway)
    clock.advance(idle - HOUR)
    assert refresh(http, g.client, g.refresh_token).status_code == 200
    clock.advance(idle - HOUR)  # almost twice the idle time since the grant: still alive
    assert refresh(http, g.client, g.refresh_token).status_code == 200
    clock.advance(idle + timedelta(seconds=1))
    r = refresh(http, g.client, g.refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_absolute_lifetime_ends_a_kept_refresh_token(http, gateway, clock):
    """OAUTH.md 78: however often it is used, the grant ends at the family's absolute
    lifetime (CALGATE_REFRESH_TOKEN_TTL), and the client must authorize the user again."""
    absolute = timedelta(seconds=gateway.settings.refresh_token_ttl)
    step = timedelta(seconds=gateway.settings.refresh_token_idle_ttl) - HOUR
    g = grant(http, gateway)
    lived = timedelta(0)
    while lived + step < absolute:
        clock.advance(step)
        lived += step
        assert refresh(http, g.client, g.refresh_token).status_code == 200, lived
    clock.advance(absolute - lived + timedelta(seconds=1))
    r = refresh(http, g.client, g.refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_turning_rotation_on_rotates_the_kept_token_and_detects_its_reuse(http, gateway):
    """``calgate clients update --rotate-refresh-tokens`` applies at the next refresh: the
    kept token is rotated once, and presenting it again after that ends the grant."""
    g = grant(http, gateway)
    kept = refresh(http, g.client, g.refresh_token).json()
    assert kept["refresh_token"] == g.refresh_token
    gateway.oauth.registry.update(g.client.client_id, rotate_refresh_tokens=True)
    rotated = refresh(http, g.client, g.refresh_token).json()
    assert rotated["refresh_token"] != g.refresh_token
    newest = refresh(http, g.client, rotated["refresh_token"]).json()
    r = refresh(http, g.client, g.refresh_token)  # superseded twice: reuse
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert api(http, newest["access_token"], "/v1/account").status_code == 401


@pytest.fixture
def served(gateway) -> Iterator[str]:
    """The gateway under a real uvicorn server in this process (so the test's clock holds
    there too); its base URL."""
    with serving(create_app(gateway)) as url:
        yield url


def test_pycronofy_app_keeping_only_its_first_refresh_token(http, gateway, clock, served):
    """pycronofy 2.1.1, unmodified: the app exchanges the code, keeps the refresh token it
    got, and every hour of a simulated day builds a new SDK client from that token alone."""
    client = make_client(gateway, scopes="read_account", legacy_no_pkce=True)
    code = authorize(http, client, scope="read_account")
    first = sdk(served, client.client_id, client.secret)
    tokens_ = first.get_authorization_from_code(code, redirect_uri=client.redirect_uri)
    stored = tokens_["refresh_token"]
    assert first.account()["account_id"].startswith("acc_")
    for hour in range(1, 25):
        clock.advance(HOUR)
        app = sdk(served, client.client_id, client.secret, refresh_token=stored)
        refreshed = app.refresh_authorization()
        assert refreshed["refresh_token"] == stored, hour
        assert app.account()["account_id"].startswith("acc_"), hour
