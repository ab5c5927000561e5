"""Fixtures shared by every test: a migrated database on SQLite *and* PostgreSQL, a Gateway
on the local secret store, and a test client for the ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.persistence.database import migrate
from gateway.secrets.local import LocalSecretStore
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from tests.support.db import postgres_database, truncate_all
from tests.support.memory_connector import MemoryConnector

ISSUER = "http://127.0.0.1:8080"


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """One migrated PostgreSQL database per test process, emptied before each test."""
    with postgres_database() as url:
        migrate(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every persistence test runs on both databases, each test on an empty one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'calgate.db'}"
        migrate(url)
        yield url
        return
    url = request.getfixturevalue("pg_session_url")
    truncate_all(url)
    yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # The worker is driven explicitly by the tests that need it (worker.sweep, sync, outbox).
    return Settings().replace(database_url=db_url, data_dir=tmp_path / "data",
                              public_url=ISSUER, worker_mode="external")


@pytest.fixture
def connector() -> MemoryConnector:
    return MemoryConnector()


@pytest.fixture
def gateway(settings: Settings, connector: MemoryConnector, tmp_path: Path) -> Iterator[Gateway]:
    connectors = ConnectorRegistry()
    connectors.register(connector)
    gw = Gateway.build(settings, secrets=LocalSecretStore(tmp_path / "secrets"),
                       connectors=connectors)
    yield gw
    gw.close()


@pytest.fixture
def http(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway), base_url=ISSUER, follow_redirects=False) as client:
        yield client
