"""The token lane's group commit (bench/HOTSPOTS.md) keeps OAUTH.md 68-72: a batch of token
requests answers exactly as the same requests one at a time would, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from oauth_server.grants_store import GrantStore
from oauth_server.server import Request
from oauth_server.tables import tokens
from tests.support.oauth import RegisteredClient
from tests.support.oauth_extra import (
    api,
    creds,
    custom_gateway,
    grant,
    refresh,
    rotating_client,
)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")  # SQLAlchemy's SQLite DATETIME


def make_request(client: RegisteredClient, refresh_token: str, **extra: str) -> Request:
    items = {"grant_type": "refresh_token", "refresh_token": refresh_token, **creds(client),
             **extra}
    return Request("POST", "http://127.0.0.1:8080/oauth/token", list(items.items()), {},
                   "127.0.0.1")


def answer(gateway, *requests: Request) -> list[tuple[int, dict]]:
    results = gateway.oauth.server.create_token_responses(list(requests))
    assert not any(isinstance(r, Exception) for r in results), results
    return [(status, body) for status, body, _ in results]


def test_one_token_twice_in_a_batch_gets_one_pair(http, gateway):
    """OAUTH.md 71-72: the second presentation loses the rotation and, being inside the
    grace window, gets the pair the first one produced."""
    g = grant(http, gateway, rotating_client(gateway))
    (s1, first), (s2, second) = answer(gateway, make_request(g.client, g.refresh_token),
                                       make_request(g.client, g.refresh_token))
    assert (s1, s2) == (200, 200)
    assert (first["access_token"], first["refresh_token"]) == \
        (second["access_token"], second["refresh_token"])
    assert api(http, first["access_token"]).status_code == 200
    assert refresh(http, g.client, first["refresh_token"]).status_code == 200


def test_without_grace_a_second_presentation_in_a_batch_is_reuse(settings, connector,
                                                                  tmp_path):
    """OAUTH.md 69-70: with no grace window the loser is reuse, and the family dies."""
    with custom_gateway(settings, connector, tmp_path / "g0",
                        refresh_grace_seconds=0) as (gw, http):
        g = grant(http, gw, rotating_client(gw))
        (s1, first), (s2, second) = answer(gw, make_request(g.client, g.refresh_token),
                                           make_request(g.client, g.refresh_token))
        assert (s1, s2) == (200, 400) and second["error"] == "invalid_grant"
        assert api(http, first["access_token"]).status_code == 401


def test_a_failed_request_in_a_batch_rotates_nothing(http, gateway):
    """OAUTH.md 76-77: requests fail or succeed one by one, whatever shares their batch."""
    g, other = grant(http, gateway), grant(http, gateway)
    results = answer(gateway,
                     make_request(g.client, g.refresh_token, client_secret="wrong"),
                     make_request(other.client, g.refresh_token),
                     make_request(other.client, other.refresh_token, scope="read_events"),
                     make_request(other.client, other.refresh_token))
    assert [status for status, _ in results] == [401, 400, 400, 200]
    assert refresh(http, g.client, g.refresh_token).status_code == 200


def test_a_failed_group_commit_answers_each_request_alone(http, gateway, monkeypatch):
    """Nothing of a failed batch transaction is kept; its requests are answered one by one."""
    grants = [grant(http, gateway) for _ in range(3)]
    apply = GrantStore._apply
    calls = []

    def fail_first(self, conn, rotations):
        calls.append(len(rotations))
        if len(calls) == 1:
            raise RuntimeError("disk I/O error")
        return apply(self, conn, rotations)

    monkeypatch.setattr(GrantStore, "_apply", fail_first)
    results = answer(gateway, *(make_request(g.client, g.refresh_token) for g in grants))
    assert calls == [3, 1, 1, 1]
    assert [status for status, _ in results] == [200, 200, 200]
    for (_, body), g in zip(results, grants, strict=True):
        assert api(http, body["access_token"]).status_code == 200
        assert refresh(http, g.client, body["refresh_token"]).status_code == 200


def test_rotations_store_rows_as_sqlalchemy_core_does(http, gateway):
    """The prepared DB-API statements write what Core writes: the rows of a code exchange
    (Core) and of a refresh (prepared) read back alike, and on SQLite are the same text."""
    g = grant(http, gateway, rotating_client(gateway))
    rotated = refresh(http, g.client, g.refresh_token).json()
    digest = gateway.oauth.server.keys.token_digest
    with gateway.engine.connect() as conn:
        rows = {r.token_hash: r for r in conn.execute(select(tokens)).all()}
        sqlite = gateway.engine.dialect.name == "sqlite"
        raw = conn.execute(text("SELECT created_at, expires_at, rotated_at FROM oauth_tokens")
                           ).all() if sqlite else []
    old, new = rows[digest(g.refresh_token)], rows[digest(rotated["refresh_token"])]
    assert old.rotated_at is not None and new.rotated_at is None
    assert old.expires_at.tzinfo == new.expires_at.tzinfo  # both naive (SQLite) or both UTC
    assert abs(new.expires_at - old.expires_at).total_seconds() < 60
    assert new.family_id == old.family_id and new.kind == "refresh"
    for value in (v for row in raw for v in row if v is not None):
        assert ISO_UTC.match(value), value


def test_kept_tokens_in_a_batch_each_get_an_access_token(http, gateway):
    """A confidential client that keeps its refresh token: the same token twice in one batch
    gets two 200s, the same refresh token and two live access tokens; the kept token's row
    is written as Core writes it (idle expiry moved on, not rotated)."""
    g = grant(http, gateway)
    (s1, first), (s2, second) = answer(gateway, make_request(g.client, g.refresh_token),
                                       make_request(g.client, g.refresh_token))
    assert (s1, s2) == (200, 200)
    assert first["refresh_token"] == second["refresh_token"] == g.refresh_token
    assert first["access_token"] != second["access_token"]
    for body in (first, second):
        assert api(http, body["access_token"]).status_code == 200
    digest = gateway.oauth.server.keys.token_digest(g.refresh_token)
    with gateway.engine.connect() as conn:
        row = conn.execute(select(tokens).where(tokens.c.token_hash == digest)).one()
        raw = conn.execute(text("SELECT expires_at FROM oauth_tokens WHERE token_hash = :d"),
                           {"d": digest}).scalar_one()
    assert row.rotated_at is None and row.generation == 1
    if gateway.engine.dialect.name == "sqlite":
        assert ISO_UTC.match(raw), raw


def test_batches_leave_sqlite_checkpoints_as_they_found_them(gateway):
    """A batch stops its connection checkpointing the WAL only while it runs."""
    if gateway.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    checkpoints = gateway.oauth.store._checkpoints
    assert checkpoints is not None

    def setting(conn) -> int:
        cursor = conn.cursor()
        value = cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        cursor.close()
        return int(value)

    conn = gateway.engine.raw_connection()
    try:
        before = setting(conn)
        with checkpoints.deferred(conn):
            assert setting(conn) == 0
        assert setting(conn) == before == 1000
    finally:
        conn.close()
