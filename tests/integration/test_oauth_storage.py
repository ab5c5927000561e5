"""OAUTH.md 93-95 (white-box): what the database, the logs and the API ever show."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select

from oauth_server.tables import clients, codes, tokens
from tests.support.memory_connector import PASSWORD
from tests.support.oauth import Pkce, authorize, exchange, make_client
from tests.support.oauth_extra import (
    api,
    basic,
    dump_database,
    grant,
    introspect,
    post,
    refresh,
    revoke,
)

SECRETS_LOGGED_BY_THE_TEST_CLIENT = ("httpx", "httpcore")  # client side, not the gateway


def probe_run(http, gateway) -> tuple[list[str], list]:
    """Issue and use one of everything; returns every secret seen and every response."""
    responses = []
    seen: list[str] = [PASSWORD]

    def keep(r):
        responses.append(r)
        return r

    g = grant(http, gateway, scope="read_account")
    seen += [g.client.secret, g.access_token, g.refresh_token, g.pkce.verifier]
    rotated = keep(refresh(http, g.client, g.refresh_token)).json()
    seen += [rotated["access_token"], rotated["refresh_token"]]
    keep(refresh(http, g.client, g.refresh_token))  # grace-window retry
    keep(introspect(http, g.client, rotated["access_token"]))
    keep(api(http, rotated["access_token"], "/v1/account"))
    keep(api(http, rotated["access_token"], "/v1/userinfo"))
    keep(api(http, rotated["access_token"], "/v1/profiles"))
    keep(api(http, g.refresh_token))  # an RT as bearer token: 401
    keep(post(http, "/oauth/token", {"grant_type": "refresh_token",
                                     "refresh_token": rotated["refresh_token"],
                                     "client_id": g.client.client_id,
                                     "client_secret": g.client.secret + "x"}))
    keep(post(http, "/oauth/token", {"grant_type": "refresh_token",
                                     "refresh_token": rotated["refresh_token"]},
              headers={"Authorization": basic(g.client.client_id, "wrong" + g.client.secret)}))
    # A code redeemed twice, and one never redeemed.
    client = make_client(gateway, scopes="read_write")
    seen.append(client.secret)
    pkce = Pkce()
    code = authorize(http, client, scope="read_account list_calendars", pkce=pkce)
    first = exchange(http, client, code, pkce)
    second = exchange(http, client, code, pkce)
    assert second["_status"] == 400
    unused = authorize(http, client, pkce=Pkce())
    seen += [code, unused, str(first["access_token"]), str(first["refresh_token"]), pkce.verifier]
    # A live grant that stays in the database, then a revoked one.
    kept = grant(http, gateway, client, scope="list_calendars", separate=True)
    seen += [kept.access_token, kept.refresh_token]
    keep(revoke(http, g.client, token=rotated["refresh_token"]))
    return seen, responses


def test_database_holds_no_usable_secret(http, gateway):
    """OAUTH.md 93, 48, 95: a full dump (every table, every row) contains no code, token,
    client secret, server key or upstream password."""
    seen, _ = probe_run(http, gateway)
    master = gateway.secrets.get("server/keys")["master"]
    dump = dump_database(gateway)
    assert len(dump) > 1000  # sanity: rows were really dumped
    for secret in [*seen, master]:
        assert secret not in dump, "a secret is stored in clear"


def test_a_stolen_dump_cannot_be_replayed(http, gateway):
    """OAUTH.md 93: the stored digests are useless as codes, tokens or secrets."""
    g = grant(http, gateway)
    with gateway.engine.connect() as conn:
        token_hashes = [r[0] for r in conn.execute(select(tokens.c.token_hash)).all()]
        code_hashes = [r[0] for r in conn.execute(select(codes.c.code_hash)).all()]
        secret_hash = conn.execute(select(clients.c.secret_hash)).scalar_one()
    assert len(token_hashes) == 2 and len(code_hashes) == 1
    for digest in token_hashes:
        assert api(http, digest).status_code == 401
        r = refresh(http, g.client, digest)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for digest in code_hashes:
        r = post(http, "/oauth/token", {
            "grant_type": "authorization_code", "code": digest,
            "redirect_uri": g.client.redirect_uri, "client_id": g.client.client_id,
            "client_secret": g.client.secret, "code_verifier": g.pkce.verifier})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = refresh(http, type(g.client)(g.client.client_id, secret_hash), g.refresh_token)
    assert r.status_code == 401


def test_nothing_secret_is_logged_or_shown(http, gateway, caplog):
    """OAUTH.md 94: after a probe run, no code, token, secret or password is in any log
    record (any logger of the gateway, at DEBUG) or any error response."""
    caplog.set_level(logging.DEBUG)
    seen, responses = probe_run(http, gateway)
    records = [r for r in caplog.records
               if not r.name.startswith(SECRETS_LOGGED_BY_THE_TEST_CLIENT)]
    assert records, "nothing was logged: the probe would prove nothing"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}"
                     for r in records)
    digests = [gateway.oauth.server.keys.secret_digest(s) for s in seen]
    for secret in seen + digests:
        assert secret not in text
    for r in responses:
        if r.status_code >= 400 or r.request.url.path != "/oauth/token":
            body = r.text
            for secret in seen:
                assert secret not in body, (r.request.url.path, r.status_code)


def test_upstream_credentials_are_encrypted_outside_the_database(http, gateway, tmp_path: Path):
    """OAUTH.md 95: the CalDAV-style password is in the secret store only, encrypted with a
    key that is not in the database, and no API or page returns it."""
    client = make_client(gateway, scopes="read_write")
    g = grant(http, gateway, client, scope="read_write")
    assert PASSWORD not in dump_database(gateway)
    store = tmp_path / "secrets"
    files = [p for p in store.rglob("*") if p.is_file()]
    assert files, "the local secret store is where the credentials live"
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes()
    [profile_id] = [p["profile_id"] for p in
                    api(http, g.access_token, "/v1/profiles").json()["profiles"]]
    assert gateway.secrets.get(f"profiles/{profile_id}/credentials")["password"] == PASSWORD
    master_key = (store / "master.key").read_bytes()
    dump = dump_database(gateway)
    assert master_key.hex() not in dump and master_key.decode("latin-1") not in dump
    for path in ("/v1/account", "/v1/userinfo", "/v1/profiles"):
        assert PASSWORD not in api(http, g.access_token, path).text
    assert PASSWORD not in str(g.body)
