"""Client secrets kept for webhook signing, and secret rotation with overlap (API.md s9.2).

On SQLite and PostgreSQL, with the local secret store and the real OpenBao-backed Vault
store. Expiry is tested by ageing ``previous_secret_until`` in the database, not by waiting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, String, Text, select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.persistence.database import make_engine
from gateway.secrets import SecretStore
from gateway.services.linking import ConnectorRegistry
from gateway.services.signing import CRONOFY_HEADER, cronofy_hmac, secrets_path
from gateway.settings import Settings
from oauth_server.crypto import ServerKeys
from oauth_server.registry import ClientError, ClientRegistry
from oauth_server.tables import clients
from tests.support.memory_connector import MemoryConnector
from tests.support.oauth import RegisteredClient, make_client
from tests.support.oauth_extra import dump_database, grant, refresh

ISSUER = "http://127.0.0.1:8080"


@pytest.fixture
def kept(settings: Settings, connector: MemoryConnector, store: SecretStore
         ) -> Iterator[tuple[Gateway, TestClient]]:
    """A gateway on ``store`` and its test client. No client cache: the expiry tests age
    rows in the database, which a cached client record would hide for a second."""
    connectors = ConnectorRegistry()
    connectors.register(connector)
    gw = Gateway.build(settings.replace(auth_cache_seconds=0), secrets=store,
                       connectors=connectors)
    with TestClient(create_app(gw), base_url=ISSUER, follow_redirects=False) as http:
        yield gw, http
    gw.close()


def as_client(client: RegisteredClient, secret: str) -> RegisteredClient:
    return RegisteredClient(client.client_id, secret, client.redirect_uri)


def refreshes(http: TestClient, client: RegisteredClient, token: list[str]) -> int:
    """Refresh with ``client``'s credentials; on success ``token[0]`` is the new token."""
    r = refresh(http, client, token[0])
    if r.status_code == 200:
        token[0] = r.json()["refresh_token"]
    return r.status_code


def expire_overlap(gateway: Gateway, client_id: str) -> None:
    with gateway.engine.begin() as conn:
        done = conn.execute(update(clients).where(clients.c.client_id == client_id).values(
            previous_secret_until=datetime.now(UTC) - timedelta(seconds=1))).rowcount
    assert done == 1


def client_text(gateway: Gateway) -> str:
    """Every text column of every oauth_clients row."""
    columns = [c for c in clients.columns if isinstance(c.type, String | Text)]
    with gateway.engine.connect() as conn:
        rows = conn.execute(select(*columns)).all()
    return "\n".join(str(value) for row in rows for value in row)


def test_rotation_with_overlap_end_to_end(kept, store):
    gateway, http = kept
    client = make_client(gateway)
    old = client.secret
    assert old is not None
    assert gateway.signing is not None
    assert gateway.signing.active(client.client_id) == [old]
    token = [grant(http, gateway, client).refresh_token]

    new = gateway.oauth.registry.rotate_secret(client.client_id, overlap_seconds=3600)
    assert gateway.signing.active(client.client_id) == [new, old]
    headers = gateway.signing.sign(client.client_id, b"{}")
    assert headers is not None and headers[CRONOFY_HEADER] == cronofy_hmac([new, old], b"{}")
    assert refreshes(http, as_client(client, old), token) == 200
    assert refreshes(http, as_client(client, new), token) == 200
    assert refreshes(http, as_client(client, "wrong"), token) == 401

    # Neither secret is in the database: not in oauth_clients, not anywhere else.
    assert old not in client_text(gateway) and new not in client_text(gateway)
    everything = dump_database(gateway)
    assert old not in everything and new not in everything

    expire_overlap(gateway, client.client_id)
    assert refreshes(http, as_client(client, old), token) == 401
    assert refreshes(http, as_client(client, new), token) == 200
    # The store's own record of the overlap ends when the database's does.
    later = datetime.now(UTC) + timedelta(seconds=3601)
    assert gateway.signing.active(client.client_id, now=later) == [new]

    assert gateway.delete_client(client.client_id)
    assert gateway.signing.active(client.client_id) == []
    assert store.find(secrets_path(client.client_id)) is None
    assert store.list("clients") == []


def test_rotation_without_overlap_ends_the_old_secret_at_once(kept):
    gateway, http = kept
    client = make_client(gateway)
    token = [grant(http, gateway, client).refresh_token]
    new = gateway.oauth.registry.rotate_secret(client.client_id)
    assert gateway.signing is not None
    assert gateway.signing.active(client.client_id) == [new]
    assert refreshes(http, client, token) == 401
    assert refreshes(http, as_client(client, new), token) == 200
    with gateway.engine.connect() as conn:
        row = conn.execute(select(clients).where(
            clients.c.client_id == client.client_id)).one()._mapping
    assert row["previous_secret_hash"] is None and row["previous_secret_until"] is None


def test_the_previous_secret_also_authenticates_revoke_and_introspect(kept):
    gateway, http = kept
    client = make_client(gateway)
    issued = grant(http, gateway, client)
    gateway.oauth.registry.rotate_secret(client.client_id, overlap_seconds=600)
    r = http.post("/oauth/introspect", data={"client_id": client.client_id,
                                             "client_secret": client.secret,
                                             "token": issued.access_token})
    assert r.status_code == 200 and r.json()["active"] is True
    expire_overlap(gateway, client.client_id)
    r = http.post("/oauth/token/revoke", data={"client_id": client.client_id,
                                               "client_secret": client.secret,
                                               "token": issued.access_token})
    assert r.status_code == 401


def test_public_clients_keep_nothing(kept, store):
    gateway, _ = kept
    client = make_client(gateway, public=True)
    assert gateway.signing is not None
    assert gateway.signing.active(client.client_id) == []
    assert gateway.signing.sign(client.client_id, b"{}") is None
    assert store.list("clients") == []


def test_rotation_discards_the_cached_client(gateway, http):
    """With the client cache on (the default), both secrets work right after rotation."""
    client = make_client(gateway)
    token = [grant(http, gateway, client).refresh_token]
    assert refreshes(http, client, token) == 200  # the client record is cached now
    new = gateway.oauth.registry.rotate_secret(client.client_id, overlap_seconds=60)
    assert refreshes(http, as_client(client, new), token) == 200
    assert refreshes(http, client, token) == 200


# -- the registry and its keeper, without the gateway -------------------------------------
class RecordingKeeper:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail = fail

    def keep(self, client_id: str, secret: str, previous_until: datetime | None) -> None:
        self.calls.append(("keep", client_id, secret, previous_until))
        if self.fail:
            raise RuntimeError("store down")

    def forget(self, client_id: str) -> None:
        self.calls.append(("forget", client_id))


KEYS = ServerKeys(os.urandom(32))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    yield made
    made.dispose()


@pytest.fixture
def registry(engine: Engine) -> tuple[ClientRegistry, RecordingKeeper]:
    keeper = RecordingKeeper()
    return ClientRegistry(engine, KEYS, keeper=keeper), keeper


def new_client(registry: ClientRegistry, public: bool = False) -> tuple[str, str | None]:
    client, secret = registry.create(name="App", redirect_uris=["https://app.example/cb"],
                                     scopes=["read_account"], public=public)
    return client.client_id, secret


def test_keeper_is_told_each_secret(registry):
    reg, keeper = registry
    client_id, secret = new_client(reg)
    assert keeper.calls == [("keep", client_id, secret, None)]

    before = datetime.now(UTC)
    second = reg.rotate_secret(client_id, overlap_seconds=90)
    _, _, kept_secret, until = keeper.calls[-1]
    assert kept_secret == second and isinstance(until, datetime)
    assert before + timedelta(seconds=90) <= until <= datetime.now(UTC) + timedelta(seconds=90)

    third = reg.rotate_secret(client_id)
    assert keeper.calls[-1] == ("keep", client_id, third, None)

    assert reg.delete(client_id)
    assert keeper.calls[-1] == ("forget", client_id)
    assert len(keeper.calls) == 4


def test_public_clients_are_not_kept(registry):
    reg, keeper = registry
    new_client(reg, public=True)
    assert keeper.calls == []


def test_registry_accepts_the_previous_secret_until_it_expires(registry, engine):
    reg, _ = registry
    keys = KEYS
    client_id, old = new_client(reg)
    assert old is not None
    new = reg.rotate_secret(client_id, overlap_seconds=3600)
    found = reg.find(client_id)
    assert found is not None and found.previous_secret_until is not None
    assert found.check_client_secret(old, keys) and found.check_client_secret(new, keys)
    assert found.secret_hash is not None and found.previous_secret_hash is not None
    assert found.secret_hash not in repr(found)  # Authlib logs clients at DEBUG
    assert found.previous_secret_hash not in repr(found)
    assert not found.accepts_digest(keys.secret_digest(old),
                                    now=found.previous_secret_until + timedelta(seconds=1))

    with engine.begin() as conn:
        conn.execute(update(clients).values(
            previous_secret_until=datetime.now(UTC) - timedelta(seconds=1)))
    aged = reg.find(client_id)
    assert aged is not None
    assert not aged.check_client_secret(old, keys) and aged.check_client_secret(new, keys)


def test_registry_rotation_without_overlap(registry):
    reg, _ = registry
    client_id, old = new_client(reg)
    assert old is not None
    new = reg.rotate_secret(client_id, overlap_seconds=0)
    found = reg.find(client_id)
    assert found is not None
    assert not found.check_client_secret(old, KEYS)
    assert found.check_client_secret(new, KEYS)


@pytest.mark.parametrize("overlap", [-1, float("nan"), float("inf"), 1e20])
def test_a_bad_overlap_is_refused(registry, overlap):
    reg, _ = registry
    client_id, _ = new_client(reg)
    with pytest.raises(ClientError):
        reg.rotate_secret(client_id, overlap_seconds=overlap)


def test_a_failing_keeper_rolls_the_rotation_back(registry):
    reg, keeper = registry
    client_id, old = new_client(reg)
    assert old is not None
    keeper.fail = True
    with pytest.raises(RuntimeError):
        reg.rotate_secret(client_id, overlap_seconds=60)
    found = reg.find(client_id)
    assert found is not None and found.check_client_secret(old, KEYS)
    assert found.previous_secret_hash is None
    with pytest.raises(RuntimeError):
        new_client(reg)
    assert [c.client_id for c in reg.list()] == [client_id]


def test_stored_shape_is_json_with_until(kept, store):
    gateway, _ = kept
    client = make_client(gateway)
    gateway.oauth.registry.rotate_secret(client.client_id, overlap_seconds=60)
    entries = json.loads(store.get(secrets_path(client.client_id))["secrets"])
    assert entries[1]["secret"] == client.secret
    assert entries[0]["until"] is None
    assert datetime.fromisoformat(entries[1]["until"]) > datetime.now(UTC)
