"""OAUTH.md 38-48: client authentication at the token endpoint."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from sqlalchemy import insert, select
from starlette.testclient import TestClient

import oauth_server.crypto
import oauth_server.server
from oauth_server.crypto import ServerKeys
from oauth_server.tables import clients
from tests.support.oauth import Pkce, RegisteredClient, authorize, make_client
from tests.support.oauth_extra import basic, custom_gateway, post

ISSUER = "http://127.0.0.1:8080"


def code_request(http, gateway, client: RegisteredClient | None = None):
    """A fresh code for ``client``; returns the client and the form without credentials."""
    client = client or make_client(gateway)
    pkce = Pkce()
    code = authorize(http, client, pkce=pkce)
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, "code_verifier": pkce.verifier}
    return client, form


def assert_invalid_client(r, *, basic_used: bool) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "invalid_client"
    assert r.headers["cache-control"] == "no-store"
    if basic_used:
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Basic ") and 'realm="calgate"' in challenge


def test_basic_authentication_works(http, gateway):
    """OAUTH.md 38."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form, headers={
        "Authorization": basic(client.client_id, client.secret)})
    assert r.status_code == 200, r.text


def test_body_credentials_work(http, gateway):
    """OAUTH.md 39."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                           "client_secret": client.secret})
    assert r.status_code == 200, r.text


def test_basic_with_wrong_secret_is_401_with_basic_challenge(http, gateway):
    """OAUTH.md 40."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form, headers={
        "Authorization": basic(client.client_id, "wrong")})
    assert_invalid_client(r, basic_used=True)


def test_body_credentials_with_wrong_secret_are_invalid_client(http, gateway):
    """OAUTH.md 41."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                           "client_secret": "wrong"})
    assert_invalid_client(r, basic_used=False)


def test_unknown_client_id_looks_like_a_wrong_secret(http, gateway):
    """OAUTH.md 42: same status, same body; no client enumeration."""
    client, form = code_request(http, gateway)
    wrong = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                               "client_secret": "wrong"})
    unknown = post(http, "/oauth/token", form | {"client_id": "cli_doesnotexist",
                                                 "client_secret": "wrong"})
    assert_invalid_client(unknown, basic_used=False)
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    wrong = post(http, "/oauth/token", form, headers={
        "Authorization": basic(client.client_id, "wrong")})
    unknown = post(http, "/oauth/token", form, headers={
        "Authorization": basic("cli_doesnotexist", "wrong")})
    assert_invalid_client(unknown, basic_used=True)
    assert (unknown.status_code, unknown.json(), unknown.headers["www-authenticate"]) == \
        (wrong.status_code, wrong.json(), wrong.headers["www-authenticate"])


def test_confidential_client_sending_only_its_id_is_refused(http, gateway):
    """OAUTH.md 43."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id})
    assert_invalid_client(r, basic_used=False)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id, "client_secret": ""})
    assert_invalid_client(r, basic_used=False)


def test_two_authentication_methods_at_once_is_invalid_request(http, gateway):
    """OAUTH.md 44 (first half)."""
    client, form = code_request(http, gateway)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                           "client_secret": client.secret},
             headers={"Authorization": basic(client.client_id, client.secret)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_stray_bearer_header_is_ignored_on_the_token_endpoint(http, gateway):
    """OAUTH.md 44 (second half), API.md s13: the Cronofy SDKs send ``Bearer None``."""
    for header in ("Bearer None", "Bearer undefined", "Bearer some-stale-token"):
        client, form = code_request(http, gateway)
        r = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                               "client_secret": client.secret},
                 as_json=True, headers={"Authorization": header})
        assert r.status_code == 200, r.text


def test_credentials_in_the_query_string_are_ignored(http, gateway):
    """OAUTH.md 45."""
    client, form = code_request(http, gateway)
    r = http.post(f"/oauth/token?client_id={client.client_id}&client_secret={client.secret}",
                  data=form)
    assert_invalid_client(r, basic_used=False)


def test_basic_credentials_are_form_urlencoded_before_base64(http, gateway):
    """OAUTH.md 46: an id and secret with ``:`` ``%`` ``+`` work only when encoded."""
    client_id, secret = "cli_a:b%c+d", "s:e%c+r et"
    with gateway.engine.begin() as conn:
        conn.execute(insert(clients).values(
            client_id=client_id, secret_hash=gateway.oauth.server.keys.secret_digest(secret),
            name="Odd", redirect_uris=["https://app.example/cb"], allowed_scopes="read_account",
            public=False, legacy_no_pkce=False, verified=False, created_at=datetime.now(UTC)))
    odd = RegisteredClient(client_id, secret)
    _, form = code_request(http, gateway, odd)
    raw = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = post(http, "/oauth/token", form, headers={"Authorization": raw})
    assert_invalid_client(r, basic_used=True)
    r = post(http, "/oauth/token", form, headers={"Authorization": basic(client_id, secret)})
    assert r.status_code == 200, r.text


def test_wrong_secrets_are_throttled_per_client_and_source(http, gateway):
    """OAUTH.md 47: 20 failures a minute from one source -> 429 with Retry-After; the client
    still works from another source."""
    assert gateway.settings.client_auth_failures_per_minute == 20
    client, form = code_request(http, gateway)
    wrong = form | {"client_id": client.client_id, "client_secret": "wrong"}
    for _ in range(20):
        assert post(http, "/oauth/token", wrong).status_code == 401
    r = post(http, "/oauth/token", wrong)
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert r.headers["content-type"].startswith("application/json")
    # The right secret from the flooded source is held back too ...
    right = form | {"client_id": client.client_id, "client_secret": client.secret}
    assert post(http, "/oauth/token", right).status_code == 429
    # ... but not from anywhere else, and other clients are untouched.
    with TestClient(http.app, base_url=ISSUER, client=("203.0.113.7", 40000)) as elsewhere:
        r = post(elsewhere, "/oauth/token", right)
        assert r.status_code == 200, r.text
    other, other_form = code_request(http, gateway)
    r = post(http, "/oauth/token", other_form | {"client_id": other.client_id,
                                                 "client_secret": other.secret})
    assert r.status_code == 200, r.text


def test_throttle_is_shared_by_every_api_process(http, gateway, settings, connector, tmp_path):
    """OAUTH.md 47: two API processes on one database count the same failures (the
    ``oauth_client_auth_failures`` table), so replicas do not multiply the limit."""
    client, form = code_request(http, gateway)
    wrong = form | {"client_id": client.client_id, "client_secret": "wrong"}
    with custom_gateway(settings, connector, tmp_path) as (_, second):
        for attempt in range(20):
            r = post(second if attempt % 2 else http, "/oauth/token", wrong)
            assert r.status_code == 401
        assert post(second, "/oauth/token", wrong).status_code == 429
        assert post(http, "/oauth/token", wrong).status_code == 429


def test_client_secrets_are_random_keyed_digests_compared_in_constant_time(
        http, gateway, monkeypatch):
    """OAUTH.md 48 (white-box): 256-bit secrets; the database holds an HMAC-SHA256 digest;
    comparison through hmac.compare_digest; unknown ids still cost a digest."""
    client, form = code_request(http, gateway)
    assert client.secret is not None and len(client.secret) >= 43
    with gateway.engine.connect() as conn:
        stored = conn.execute(select(clients.c.secret_hash).where(
            clients.c.client_id == client.client_id)).scalar_one()
    assert stored == gateway.oauth.server.keys.secret_digest(client.secret)
    assert len(stored) == 64 and client.secret not in stored

    compared: list[tuple[str, str]] = []
    digested: list[str] = []
    real_equal, real_digest = oauth_server.crypto.equal, ServerKeys.secret_digest

    def spy_equal(a: str, b: str) -> bool:
        compared.append((a, b))
        return real_equal(a, b)

    def spy_digest(self: ServerKeys, secret: str) -> str:
        digested.append(secret)
        return real_digest(self, secret)

    calls: list[tuple[bytes, bytes]] = []
    real_compare = oauth_server.crypto.hmac.compare_digest

    def spy_compare(a, b):
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(oauth_server.crypto, "equal", spy_equal)
    monkeypatch.setattr(oauth_server.server, "equal", spy_equal, raising=False)
    monkeypatch.setattr(ServerKeys, "secret_digest", spy_digest)
    monkeypatch.setattr(oauth_server.crypto.hmac, "compare_digest", spy_compare)
    r = post(http, "/oauth/token", form | {"client_id": client.client_id,
                                           "client_secret": "wrong-secret"})
    assert r.status_code == 401
    assert compared == [(stored, real_digest(gateway.oauth.server.keys, "wrong-secret"))]
    assert calls, "equal() must use hmac.compare_digest"
    r = post(http, "/oauth/token", form | {"client_id": "cli_unknown",
                                           "client_secret": "other-secret"})
    assert r.status_code == 401
    assert "other-secret" in digested
