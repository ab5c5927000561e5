"""The ASGI app the end-to-end tests serve with a real uvicorn process.

    python -m uvicorn tests.support.e2e_app:build --factory --host 127.0.0.1 --port P

Settings come from the ``CALGATE_*`` environment (``Settings.from_env()``); the secret store is
the local one under ``$CALGATE_DATA_DIR/secrets``; the connectors are the real ones (Google,
CalDAV, iCloud, ICS) plus the in-memory test connector ("memory", password ``correct horse``).
Test-only: never used by ``calgate serve``.
"""

from __future__ import annotations

from starlette.applications import Starlette

from gateway.app import Gateway, create_app, provider_options
from gateway.domain.upstream_apps import UpstreamApps
from gateway.observe.logs import configure_logging
from gateway.secrets.local import LocalSecretStore
from gateway.services.connectors import register_defaults
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from tests.support.memory_connector import MemoryConnector


def build_gateway(settings: Settings) -> Gateway:
    """A Gateway on the local secret store with the memory connector registered."""
    store = LocalSecretStore(settings.data_dir / "secrets")
    connectors = ConnectorRegistry()
    register_defaults(connectors, provider_options(settings), UpstreamApps(store))
    connectors.register(MemoryConnector())
    return Gateway.build(settings, secrets=store, connectors=connectors)


def build() -> Starlette:
    """uvicorn ``--factory`` entry point; logs as ``calgate serve`` does (JSON lines)."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(build_gateway(settings))
