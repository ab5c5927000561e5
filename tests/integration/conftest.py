"""Fixtures for the integration tests: real servers on loopback, stopped by PID."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from gateway.secrets import SecretStore
from gateway.secrets.local import LocalSecretStore
from gateway.secrets.vault import VaultSecretStore, bootstrap_vault
from gateway.settings import Settings
from tests.support.baodev import OpenBaoDevServer
from tests.support.linked import link  # noqa: F401  (a fixture for the API tests)


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBaoDevServer]:
    """One OpenBao dev server per session (``.url``, ``.root_token``), Transit enabled."""
    with OpenBaoDevServer() as bao:
        root = hvac.Client(bao.url, token=bao.root_token)
        try:
            bootstrap_vault(root, Settings())
        finally:
            root.adapter.close()
        yield bao


@pytest.fixture
def vault_store(openbao: OpenBaoDevServer, tmp_path: Path) -> Iterator[VaultSecretStore]:
    """A VaultSecretStore (token auth, root token) on a KV prefix of its own."""
    token_file = tmp_path / "vault-token"
    token_file.write_text(openbao.root_token)
    settings = Settings().replace(
        secret_backend="vault", vault_addr=openbao.url, vault_auth="token",
        vault_token_file=token_file, vault_kv_prefix=f"test-{uuid.uuid4().hex[:12]}")
    store = VaultSecretStore.from_settings(settings)
    yield store
    store.close()


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    """Each secret store backend in turn: the local one, and Vault (OpenBao)."""
    if request.param == "vault":
        yield request.getfixturevalue("vault_store")
        return
    local = LocalSecretStore(tmp_path / "secrets")
    yield local
    local.close()
