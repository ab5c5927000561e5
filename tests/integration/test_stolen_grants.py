"""Issue 11: a stolen grant ends the authorization, exactly as revoking it does.

A replayed authorization code or a refresh token reused after its grace window revokes the
token family (RFC 6749 s4.1.2, RFC 9700 s4.14.2); nobody holds a token to erase the account
any more, so the account goes too: no row of it in any table, no secret-store entry, and an
audit row saying why. Each test runs on SQLite and PostgreSQL, with the local secret store
and with OpenBao.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.domain.desired import DesiredEvent
from gateway.persistence.tables import audit_log
from gateway.persistence.tables import metadata as gateway_tables
from gateway.secrets import SecretStore
from gateway.services.accounts import PendingAccount
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from oauth_server.grants_store import REFRESH_REUSE
from oauth_server.scopes import expand
from oauth_server.tables import metadata as oauth_tables
from providers.memory.provider import WORLD
from providers.model import Event
from tests.conftest import ISSUER
from tests.support.linked import run
from tests.support.memory_connector import MemoryConnector
from tests.support.oauth import REDIRECT, RegisteredClient, make_client
from tests.support.oauth_extra import age_token, api, creds, introspect, past, post, refresh

# What outlives any one authorization: the client apps and the audit log (the schema's
# own bookkeeping is not in the metadata).
KEPT_TABLES = {"oauth_clients", "audit_log"}


@dataclass
class Authorized:
    gateway: Gateway
    http: TestClient
    client: RegisteredClient
    subject: str
    code: str
    tokens: dict[str, str]


@pytest.fixture
def stolen_gateway(settings: Settings, store: SecretStore) -> Iterator[tuple[Gateway, TestClient]]:
    connectors = ConnectorRegistry()
    connectors.register(MemoryConnector())
    gw = Gateway.build(settings, secrets=store, connectors=connectors)
    with TestClient(create_app(gw), base_url=ISSUER, follow_redirects=False) as http:
        yield gw, http
    gw.close()


@pytest.fixture
def authorized(stolen_gateway) -> Iterator[Authorized]:
    """An account with a synced mirror, a pending write, credentials in the secret store,
    and tokens from a real code exchange at /oauth/token."""
    gw, http = stolen_gateway
    client = make_client(gw)
    name = f"stolen-{uuid.uuid4().hex[:8]}@example.com"
    upstream = WORLD.add_account(name, "pw")
    try:
        subject = _link_and_fill(gw, client, name, next(iter(upstream.calendars)))
        code = gw.oauth.store.save_code(client_id=client.client_id, redirect_uri=REDIRECT,
                                        scope="read_write", subject=subject,
                                        linking_profile=None, code_challenge=None)
        r = post(http, "/oauth/token", {"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": REDIRECT, **creds(client)})
        assert r.status_code == 200, r.text
        yield Authorized(gw, http, client, subject, code, r.json())
    finally:
        WORLD.accounts.pop(name, None)


def _link_and_fill(gw: Gateway, client: RegisteredClient, name: str, calendar: str) -> str:
    path = gw.accounts.park_credentials(uuid.uuid4().hex, {"account": name, "password": "pw"})
    linked = gw.accounts.link(client.client_id, PendingAccount(
        "memory", "memory", name, name, path), None, sorted(expand(["read_write"])))
    start = datetime.now(UTC) + timedelta(days=1)
    WORLD.put(name, calendar, "e1", [Event(resource_id="e1", instance_id="e1", start=start,
                                           end=start + timedelta(hours=1), summary="Therapy")])
    outcome = run(gw.worker.sync.sync_profile(linked.profile_id))
    assert outcome.error is None, outcome
    gw.writes.upsert(linked.subject, _calendar_id(gw, linked.subject), "mine",
                     DesiredEvent.from_stored({
        "summary": "Session", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat()}))
    return linked.subject


def _calendar_id(gw: Gateway, subject: str) -> str:
    from gateway.persistence.tables import calendars, profiles

    with gw.engine.connect() as conn:
        return str(conn.execute(select(calendars.c.id).join(
            profiles, profiles.c.id == calendars.c.profile_id).where(
            profiles.c.account_id == subject)).scalars().first())


def row_counts(gw: Gateway) -> dict[str, int]:
    """Rows in every table of the schema that belongs to authorizations (all but the kept)."""
    counts = {}
    with gw.engine.connect() as conn:
        for meta in (gateway_tables, oauth_tables):
            for table in meta.sorted_tables:
                if table.name not in KEPT_TABLES:
                    counts[table.name] = conn.execute(
                        select(func.count()).select_from(table)).scalar_one()
    return counts


def kept_secrets(client: RegisteredClient) -> list[str]:
    """What the secret store keeps while the client app exists: the server's keys and the
    app's secret (to sign its notifications)."""
    return sorted(["server/keys", f"clients/{client.client_id}/secrets"])


def audit_reasons(gw: Gateway, subject: str) -> list[object]:
    with gw.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.subject == subject, audit_log.c.action == "revoke_account")).all()
    return [(r[0] or {}).get("reason") for r in rows]


def assert_erased(a: Authorized, reason: str) -> None:
    counts = row_counts(a.gateway)
    assert all(n == 0 for n in counts.values()), {t: n for t, n in counts.items() if n}
    assert a.gateway.secrets.list("") == kept_secrets(a.client)
    assert audit_reasons(a.gateway, a.subject) == [reason]
    assert api(a.http, a.tokens["access_token"]).status_code == 401


def assert_filled(a: Authorized) -> None:
    """The account has rows in the tables an erasure must empty, and credentials."""
    counts = row_counts(a.gateway)
    for table in ("accounts", "profiles", "calendars", "events", "managed_events",
                  "oauth_token_families", "oauth_tokens", "oauth_codes"):
        assert counts[table] > 0, table
    assert len(a.gateway.secrets.list("")) > len(kept_secrets(a.client))


def test_reusing_a_rotated_refresh_token_erases_the_authorization(authorized):
    a = authorized
    assert_filled(a)
    newer = refresh(a.http, a.client, a.tokens["refresh_token"])
    assert newer.status_code == 200, newer.text
    age_token(a.gateway, a.tokens["refresh_token"], rotated_at=past(60))  # grace is over
    r = refresh(a.http, a.client, a.tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert_erased(a, REFRESH_REUSE)
    assert refresh(a.http, a.client, newer.json()["refresh_token"]).status_code == 400
    assert introspect(a.http, a.client, newer.json()["access_token"]).json() == {
        "active": False}


def test_replaying_a_code_erases_the_authorization(authorized):
    a = authorized
    assert_filled(a)
    r = post(a.http, "/oauth/token", {"grant_type": "authorization_code", "code": a.code,
                                      "redirect_uri": REDIRECT, **creds(a.client)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert_erased(a, "code_reuse")


def test_a_replay_with_a_wrong_secret_erases_nothing(authorized):
    """OAUTH.md 53: only the rightful client's replay counts as theft."""
    a = authorized
    r = post(a.http, "/oauth/token", {"grant_type": "authorization_code", "code": a.code,
                                      "redirect_uri": REDIRECT,
                                      "client_id": a.client.client_id,
                                      "client_secret": "wrong"})
    assert r.status_code == 401
    assert_filled(a)
    assert api(a.http, a.tokens["access_token"]).status_code == 200


def test_housekeeping_finishes_an_erasure_that_stopped_half_way(authorized):
    """The family was revoked as stolen but the erasure did not run (a crash, a sealed
    Vault): the revoked family is the marker, and the sweep ends the authorization."""
    a = authorized
    family = a.gateway.oauth.store.lookup_any(a.tokens["refresh_token"])["family_id"]
    assert a.gateway.oauth.store.revoke_family(family, REFRESH_REUSE) == a.subject
    assert row_counts(a.gateway)["accounts"] == 1
    assert a.gateway.oauth.sweep_stolen() == 1
    assert_erased(a, REFRESH_REUSE)
    assert a.gateway.oauth.sweep_stolen() == 0


def test_revoking_records_why(authorized):
    a = authorized
    r = post(a.http, "/oauth/token/revoke", creds(a.client) | {
        "token": a.tokens["refresh_token"]})
    assert r.status_code == 200
    assert_erased(a, "revoked")
