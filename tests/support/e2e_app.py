"""The ASGI app the end-to-end tests serve with a real uvicorn process.

    python -m uvicorn tests.support.e2e_app:build --factory --host 127.0.0.1 --port P

Settings come from the ``CALGATE_*`` environment (``Settings.from_env()``); the secret store is
the local one under ``$CALGATE_DATA_DIR/secrets``; the connectors are the real ones (Google,
CalDAV, iCloud, ICS) plus the in-memory test connector ("memory", password ``correct horse``).
Test-only: never used by ``calgate serve``.
"""

from __future__ import annotations

import dataclasses
import os

from starlette.applications import Starlette

from gateway.app import Gateway, create_app, provider_options
from gateway.domain.upstream_apps import UpstreamApps
from gateway.observe.logs import configure_logging
from gateway.secrets.local import LocalSecretStore
from gateway.services.connectors import register_defaults
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from providers.outbound import system_resolver
from providers.registry import ProviderOptions
from tests.support.memory_connector import MemoryConnector

# Test-only names for the outbound guard's resolver, "name=address,name=address": a mail
# domain whose Autodiscover must reach an emulator on a loopback address of its own, as DNS
# would send it (the guard still checks every address against the allowed networks).
TEST_HOSTS = "CALGATE_TEST_HOSTS"


def with_test_hosts(settings: Settings) -> ProviderOptions:
    """``provider_options`` with the names of ``$CALGATE_TEST_HOSTS`` resolved as given."""
    options = provider_options(settings)
    pairs = (p.partition("=") for p in os.environ.get(TEST_HOSTS, "").split(",") if p)
    names = {name.strip().lower(): [address.strip()] for name, _, address in pairs}
    if not names:
        return options

    def resolve(host: str, port: int) -> list[str]:
        return names.get(host.lower()) or system_resolver(host, port)

    outbound = dataclasses.replace(options.outbound, resolver=resolve)
    return dataclasses.replace(options, outbound=outbound)


def build_gateway(settings: Settings) -> Gateway:
    """A Gateway on the local secret store with the memory connector registered."""
    store = LocalSecretStore(settings.data_dir / "secrets")
    connectors = ConnectorRegistry()
    options = with_test_hosts(settings)
    register_defaults(connectors, options, UpstreamApps(store))
    connectors.register(MemoryConnector())
    return Gateway.build(settings, secrets=store, connectors=connectors, options=options)


def build() -> Starlette:
    """uvicorn ``--factory`` entry point; logs as ``calgate serve`` does (JSON lines)."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(build_gateway(settings))
