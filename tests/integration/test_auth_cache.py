"""CALGATE_AUTH_CACHE_SECONDS: a revocation is immediate in the process that made it, and at
most the cache's lifetime late in another API process on the same database."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.secrets.local import LocalSecretStore
from tests.conftest import ISSUER
from tests.support.oauth import Pkce, authorize, exchange, make_client


def second_process(settings, gateway, tmp_path, **changes) -> Gateway:
    # Same database and secret store (so the same server key), separate caches.
    return Gateway.build(settings.replace(**changes),
                         secrets=LocalSecretStore(tmp_path / "secrets"),
                         connectors=gateway.connectors)


def revoke(http, client, token):
    r = http.post("/oauth/token/revoke", data={"client_id": client.client_id,
                                               "client_secret": client.secret, "token": token})
    assert r.status_code == 200


def test_revocation_reaches_other_processes_within_the_cache_lifetime(
        http, gateway, settings, tmp_path):
    client = make_client(gateway)
    pkce = Pkce()
    tokens = exchange(http, client, authorize(http, client, pkce=pkce), pkce)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    other = second_process(settings, gateway, tmp_path, auth_cache_seconds=1.0)
    with TestClient(create_app(other), base_url=ISSUER) as b:
        assert b.get("/v1/userinfo", headers=bearer).status_code == 200  # now cached in B
        cached_by = time.monotonic()  # B's entry was made before this moment
        revoke(http, client, tokens["refresh_token"])
        assert http.get("/v1/userinfo", headers=bearer).status_code == 401  # A: at once
        # Load-proof: a request B still answers must have started within the lifetime of
        # its entry; the first one started after it must be refused.
        while True:
            asked = time.monotonic()
            if b.get("/v1/userinfo", headers=bearer).status_code != 200:
                break
            assert asked < cached_by + 1.0, "B trusted a revoked token past its cache lifetime"
            time.sleep(0.05)
    other.close()


def test_cache_off_means_every_call_asks_the_database(http, gateway, settings, tmp_path):
    client = make_client(gateway)
    pkce = Pkce()
    tokens = exchange(http, client, authorize(http, client, pkce=pkce), pkce)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    other = second_process(settings, gateway, tmp_path, auth_cache_seconds=0.0)
    with TestClient(create_app(other), base_url=ISSUER) as b:
        assert b.get("/v1/userinfo", headers=bearer).status_code == 200
        revoke(http, client, tokens["refresh_token"])
        assert b.get("/v1/userinfo", headers=bearer).status_code == 401
    other.close()


def test_rotated_client_secret_is_refused_at_once_in_the_same_process(http, gateway):
    client = make_client(gateway)
    data = {"grant_type": "refresh_token", "refresh_token": "x",
            "client_id": client.client_id, "client_secret": client.secret}
    assert http.post("/oauth/token", data=data).json()["error"] == "invalid_grant"  # cached
    gateway.oauth.registry.rotate_secret(client.client_id)
    assert http.post("/oauth/token", data=data).json()["error"] == "invalid_client"
