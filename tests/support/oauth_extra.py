"""More helpers for the OAuth conformance tests (OAUTH.md): token, refresh, revocation and
introspection calls, a second gateway with its own settings, and direct database access for
the white-box and time-dependent items (no clock mocking: rows are aged in the database)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
from sqlalchemy import MetaData, select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.secrets.local import LocalSecretStore
from gateway.services.linking import ConnectorRegistry
from gateway.settings import Settings
from oauth_server.tables import codes, families, tokens
from tests.support.memory_connector import MemoryConnector
from tests.support.oauth import Pkce, RegisteredClient, authorize, exchange, make_client


@dataclass
class Grant:
    """One completed authorization: the client, its PKCE pair and the token response."""

    client: RegisteredClient
    pkce: Pkce | None
    body: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.body["refresh_token"])

    @property
    def sub(self) -> str:
        return str(self.body["sub"])


def grant(http: TestClient, gateway: Gateway, client: RegisteredClient | None = None, *,
          scope: str = "read_account", username: str = "jane@example.com",
          separate: bool = False) -> Grant:
    """The whole journey for ``client`` (a fresh confidential one by default), tokens included.

    ``separate``: sent with ``avoid_linking=true``, so the browser's earlier account is not
    reused and the grant gets a subject of its own.
    """
    client = client or make_client(gateway)
    pkce = Pkce()
    extra = {"avoid_linking": "true"} if separate else None
    code = authorize(http, client, scope=scope, pkce=pkce, username=username, extra=extra)
    body = exchange(http, client, code, pkce)
    assert body["_status"] == 200, body
    return Grant(client, pkce, dict(body))


def rotating_client(gateway: Gateway, kind: str = "confidential_opted_in") -> RegisteredClient:
    """A client whose refresh tokens rotate: a confidential one that opted in (``calgate
    clients update --rotate-refresh-tokens``), or with ``kind="public"`` a public one."""
    if kind == "public":
        return make_client(gateway, public=True)
    client = make_client(gateway)
    assert gateway.oauth.registry.update(client.client_id, rotate_refresh_tokens=True
                                         ).rotates_refresh_tokens
    return client


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 s2.3.1: each part form-urlencoded, then base64 of ``id:secret``."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def creds(client: RegisteredClient) -> dict[str, str]:
    data = {"client_id": client.client_id}
    if client.secret:
        data["client_secret"] = client.secret
    return data


def post(http: TestClient, path: str, data: Mapping[str, str], *, as_json: bool = False,
         headers: Mapping[str, str] | None = None) -> httpx.Response:
    if as_json:
        return http.post(path, json=dict(data), headers=dict(headers or {}))
    return http.post(path, data=dict(data), headers=dict(headers or {}))


def refresh(http: TestClient, client: RegisteredClient, refresh_token: str,
            **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **creds(client)}
    return post(http, "/oauth/token", data | extra)


def revoke(http: TestClient, client: RegisteredClient, *, as_json: bool = False,
           **data: str) -> httpx.Response:
    return post(http, "/oauth/token/revoke", creds(client) | data, as_json=as_json)


def introspect(http: TestClient, client: RegisteredClient, token: str) -> httpx.Response:
    return post(http, "/oauth/introspect", creds(client) | {"token": token})


def api(http: TestClient, token: str | None, path: str = "/v1/userinfo",
        method: str = "GET") -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return http.request(method, path, headers=headers)


def location_query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


@contextmanager
def custom_gateway(settings: Settings, connector: MemoryConnector, folder: Path,
                   **changes: Any) -> Iterator[tuple[Gateway, TestClient]]:
    """A second gateway on the same database with some settings changed, and its client."""
    changed = settings.replace(**changes)
    connectors = ConnectorRegistry()
    connectors.register(connector)
    folder.mkdir(parents=True, exist_ok=True)
    gw = Gateway.build(changed, secrets=LocalSecretStore(folder / "secrets"),
                       connectors=connectors)
    with TestClient(create_app(gw), base_url=changed.issuer,
                    follow_redirects=False) as client:
        yield gw, client


# -- direct database access (white-box items) --------------------------------------------
def past(seconds: int = 3600) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def age_codes(gateway: Gateway) -> None:
    """Every authorization code is past its lifetime (OAUTH.md 61)."""
    with gateway.engine.begin() as conn:
        conn.execute(update(codes).values(expires_at=past()))


def age_token(gateway: Gateway, token: str, **values: Any) -> None:
    """Change columns of one access or refresh token's row, found by its digest."""
    digest = gateway.oauth.server.keys.token_digest(token)
    with gateway.engine.begin() as conn:
        done = conn.execute(update(tokens).where(tokens.c.token_hash == digest)
                            .values(**values)).rowcount
    assert done == 1


def age_family(gateway: Gateway, token: str, **values: Any) -> None:
    digest = gateway.oauth.server.keys.token_digest(token)
    with gateway.engine.begin() as conn:
        family = conn.execute(select(tokens.c.family_id)
                              .where(tokens.c.token_hash == digest)).scalar_one()
        conn.execute(update(families).where(families.c.id == family).values(**values))


def dump_database(gateway: Gateway) -> str:
    """Every row of every table, as text (bytes decoded as latin-1 and shown as hex too)."""
    meta = MetaData()
    meta.reflect(gateway.engine)
    parts: list[str] = []
    with gateway.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)).all():
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                        parts += [raw.decode("latin-1"), raw.hex()]
                    else:
                        parts.append(str(value))
    return "\n".join(parts)
