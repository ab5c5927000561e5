"""Revoking a profile, an authorization or a client erases it for good: nothing is left in the
database, and OpenBao holds no version or metadata of any credential (a raw hvac client looks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.domain.desired import DesiredEvent
from gateway.persistence.tables import accounts, audit_log, profiles
from gateway.secrets.vault import VaultSecretStore
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from oauth_server.tables import clients, codes, families, tokens, transactions
from tests.conftest import ISSUER
from tests.support.memory_connector import MemoryConnector
from tests.support.oauth import Pkce, authorize, connect, decide, exchange, make_client, start

pytestmark = pytest.mark.vault


@pytest.fixture
def vault_gateway(settings: Settings, vault_store: VaultSecretStore) -> Iterator[Gateway]:
    connectors = ConnectorRegistry()
    connectors.register(MemoryConnector())
    gw = Gateway.build(settings, secrets=vault_store, connectors=connectors)
    yield gw
    gw.close()


@pytest.fixture
def raw_vault(openbao) -> Iterator[hvac.Client]:
    client = hvac.Client(openbao.url, token=openbao.root_token)
    yield client
    client.adapter.close()


def vault_paths(raw: hvac.Client, store: VaultSecretStore) -> list[str]:
    """Every KV path under the store's prefix, found by walking the metadata tree."""
    found: list[str] = []

    def walk(path: str) -> None:
        try:
            keys = raw.secrets.kv.v2.list_secrets(path=path, mount_point="secret")["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return
        for key in keys:
            if key.endswith("/"):
                walk(f"{path}/{key.rstrip('/')}")
            else:
                found.append(f"{path}/{key}")

    walk(store.kv_prefix)
    return found


def assert_destroyed(raw: hvac.Client, store: VaultSecretStore, path: str) -> None:
    full = f"{store.kv_prefix}/{path}"
    with pytest.raises(hvac.exceptions.InvalidPath):
        raw.secrets.kv.v2.read_secret_metadata(path=full, mount_point="secret")
    for version in (1, 2):
        with pytest.raises(hvac.exceptions.InvalidPath):
            raw.secrets.kv.v2.read_secret_version(path=full, version=version,
                                                  mount_point="secret",
                                                  raise_on_deleted_version=True)


def count(gateway: Gateway, table, *where) -> int:
    with gateway.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def credential_path(gateway: Gateway, profile_id: str) -> str:
    with gateway.engine.connect() as conn:
        return conn.execute(select(profiles.c.credential_path)
                            .where(profiles.c.id == profile_id)).scalar_one()


def test_revoking_profile_authorization_and_client_leaves_nothing(vault_gateway, raw_vault,
                                                                  vault_store):
    gw = vault_gateway
    client = make_client(gw)
    with TestClient(create_app(gw), base_url=ISSUER, follow_redirects=False) as browser:
        pkce = Pkce()
        first = exchange(browser, client, authorize(browser, client, pkce=pkce), pkce)
        # Same browser, second calendar: linked into the same account (linking cookie).
        pkce2 = Pkce()
        second = exchange(browser, client, authorize(browser, client, pkce=pkce2,
                                                     username="work@example.com"), pkce2)
        assert second["sub"] == first["sub"]
        subject = first["sub"]
        home = first["linking_profile"]["profile_id"]
        work = second["linking_profile"]["profile_id"]
        paths = {pid: credential_path(gw, pid) for pid in (home, work)}
        assert vault_store.get(paths[home])["password"]
        assert sorted(vault_paths(raw_vault, vault_store)) == sorted(
            f"{vault_store.kv_prefix}/{p}" for p in [*paths.values(), "server/keys",
                                                     f"clients/{client.client_id}/secrets"])

        # 1. One profile.
        bearer = {"Authorization": f"Bearer {second['access_token']}"}
        assert browser.post(f"/v1/profiles/{work}/revoke", headers=bearer).status_code == 202
        assert_destroyed(raw_vault, vault_store, paths[work])
        assert count(gw, profiles, profiles.c.id == work) == 0
        assert vault_store.find(paths[home]) is not None
        # One of two calendars: the authorization and the other calendar stay.
        r = browser.get("/v1/profiles", headers=bearer)
        assert [p["profile_id"] for p in r.json()["profiles"]] == [home]

        # 2. The whole authorization, by its refresh token.
        r = browser.post("/oauth/token/revoke", json={
            "client_id": client.client_id, "client_secret": client.secret,
            "token": first["refresh_token"]})
        assert r.status_code == 200
        assert_destroyed(raw_vault, vault_store, paths[home])
        assert count(gw, accounts, accounts.c.id == subject) == 0
        assert count(gw, profiles, profiles.c.account_id == subject) == 0
        assert count(gw, families, families.c.subject == subject) == 0
        assert count(gw, codes, codes.c.subject == subject) == 0
        assert count(gw, tokens) == 0
        for token in (first["access_token"], second["access_token"]):
            r = browser.get("/v1/userinfo", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401

        # 3. Another user of the same client, then the client itself.
        browser.cookies.clear()
        pkce3 = Pkce()
        other = exchange(browser, client, authorize(browser, client, pkce=pkce3,
                                                    username="sam@example.com"), pkce3)
        other_path = credential_path(gw, other["linking_profile"]["profile_id"])
        # A flow that was connected but never answered also parks credentials.
        flow = start(browser, client, pkce=Pkce(), scope="read_account")
        connect(browser, flow, "lee@example.com")
    assert gw.delete_client(client.client_id)
    assert_destroyed(raw_vault, vault_store, other_path)
    for table in (accounts, profiles, families, tokens, codes, transactions, clients):
        assert count(gw, table) == 0, table.name
    # What is left in OpenBao: only the server key (no user's credential, pending or linked).
    assert vault_paths(raw_vault, vault_store) == [f"{vault_store.kv_prefix}/server/keys"]
    # The audit log records what happened, without any credential.
    with gw.engine.connect() as conn:
        actions = [r[0] for r in conn.execute(select(audit_log.c.action)).all()]
    assert {"link_profile", "revoke_profile", "revoke_account"} <= set(actions)


def kept(vault_store, client) -> list[str]:
    """What stays in Vault while the client app exists: the server's keys and the app's
    secret (kept to sign its notifications)."""
    return sorted(f"{vault_store.kv_prefix}/{p}"
                  for p in ("server/keys", f"clients/{client.client_id}/secrets"))


def test_denied_flow_discards_parked_credentials(vault_gateway, raw_vault, vault_store,
                                                 tmp_path: Path):
    client = make_client(vault_gateway)
    with TestClient(create_app(vault_gateway), base_url=ISSUER,
                    follow_redirects=False) as browser:
        flow = start(browser, client, pkce=Pkce())
        connect(browser, flow)
        assert any("/pending/" in p for p in vault_paths(raw_vault, vault_store))
        assert decide(browser, flow, "deny")["error"] == "access_denied"
    assert vault_paths(raw_vault, vault_store) == kept(vault_store, client)
    assert count(vault_gateway, accounts) == 0


def test_abandoned_flow_credentials_are_swept(vault_gateway, raw_vault, vault_store):
    from sqlalchemy import update

    from oauth_server.grants_store import now

    client = make_client(vault_gateway)
    with TestClient(create_app(vault_gateway), base_url=ISSUER,
                    follow_redirects=False) as browser:
        connect(browser, start(browser, client, pkce=Pkce()))
    assert any("/pending/" in p for p in vault_paths(raw_vault, vault_store))
    assert vault_gateway.oauth.sweep_expired_flows() == 0  # not expired yet: kept
    with vault_gateway.engine.begin() as conn:
        conn.execute(update(transactions).values(expires_at=now()))
    assert vault_gateway.oauth.sweep_expired_flows() == 1
    assert vault_paths(raw_vault, vault_store) == kept(vault_store, client)
    assert count(vault_gateway, transactions) == 0


def test_revocation_erases_the_mirror_and_its_data_key(vault_gateway, raw_vault, vault_store):
    """Issue 3: no event row, no data key and no credential is left behind."""
    from datetime import UTC, datetime, timedelta

    from gateway.domain.sealing import DataKeys
    from gateway.persistence.tables import (
        availability_rules,
        available_periods,
        calendars,
        events,
        managed_events,
    )
    from providers.memory.provider import WORLD
    from providers.model import Event
    from tests.support import aio

    client = make_client(vault_gateway)
    with TestClient(create_app(vault_gateway), base_url=ISSUER,
                    follow_redirects=False) as browser:
        pkce = Pkce()
        granted = exchange(browser, client, authorize(browser, client, pkce=pkce,
                                                     scope="read_write",
                                                     username="erase@example.com"), pkce)
        start = datetime.now(UTC) + timedelta(days=1)
        upstream = WORLD.accounts["erase@example.com"]
        WORLD.put("erase@example.com", next(iter(upstream.calendars)), "e1", [Event(
            resource_id="e1", instance_id="e1", start=start, end=start + timedelta(hours=1),
            summary="Therapy")])
        aio.run(vault_gateway.worker.sync.sync_profile(
            granted["linking_profile"]["profile_id"]))
        calendar_id = browser.get("/v1/calendars", headers={
            "Authorization": f"Bearer {granted['access_token']}"}).json()["calendars"][0][
            "calendar_id"]
        vault_gateway.writes.upsert(granted["sub"], calendar_id, "mine",
                                    DesiredEvent.from_stored({
            "summary": "Session", "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat()}))
        # The user's event, and the app's own, shown at once (read-your-writes).
        assert count(vault_gateway, events) == 2 and count(vault_gateway, managed_events) == 1
        assert DataKeys(vault_gateway.engine, vault_store).key(granted["sub"]) is not None
        # Managed availability (issue 15): a rule naming the calendar, an available period.
        bearer = {"Authorization": f"Bearer {granted['access_token']}"}
        assert browser.post("/v1/availability_rules", headers=bearer, json={
            "availability_rule_id": "work", "tzid": "Europe/Paris",
            "calendar_ids": [calendar_id], "weekly_periods": [
                {"day": "monday", "start_time": "09:00", "end_time": "17:00"}]}
            ).status_code == 200
        whole = start.replace(microsecond=0)
        assert browser.post("/v1/available_periods", headers=bearer, json={
            "available_period_id": "extra", "start": whole.isoformat(),
            "end": (whole + timedelta(hours=2)).isoformat()}).status_code == 202
        assert count(vault_gateway, availability_rules) == 1
        assert count(vault_gateway, available_periods) == 1
        r = browser.post("/oauth/token/revoke", data={
            "client_id": client.client_id, "client_secret": client.secret,
            "token": granted["access_token"]})
        assert r.status_code == 200
    for table in (events, managed_events, calendars, profiles, accounts, families, tokens,
                  availability_rules, available_periods):
        assert count(vault_gateway, table) == 0, table.name
    assert DataKeys(vault_gateway.engine, vault_store).key(granted["sub"]) is None
    assert vault_paths(raw_vault, vault_store) == kept(vault_store, client)
    WORLD.accounts.pop("erase@example.com", None)
