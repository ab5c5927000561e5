"""Fresh state for a benchmark run: paths, the server's environment, and the fixtures
(a client, a linked account, and pre-minted refresh tokens), plus the HTTP sanity check."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench_server import Server

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

PYTHON = ROOT / ".venv" / "bin" / "python"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
SUMMARY_LUA = BENCH / "summary.lua"
REFRESH_LUA = BENCH / "refresh.lua"
REDIRECT = "https://bench.example/cb"
SCOPE = "read_write"


@dataclass
class Fixture:
    client_id: str
    client_secret: str
    subject: str
    access_token: str
    refresh_token: str  # minted through redeem_code; spent by the sanity check
    token_files: dict[str, Path] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    # Only the settings a run may vary (CALGATE_BENCH_* → CALGATE_*) reach the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
    env |= {k.replace("CALGATE_BENCH_", "CALGATE_"): v for k, v in os.environ.items()
            if k.startswith("CALGATE_BENCH_")}
    env |= {"CALGATE_DATA_DIR": str(data_dir), "CALGATE_PORT": str(port),
            "CALGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", "CALGATE_LOG_LEVEL": "warning"}
    return env


def prepare(data_dir: Path, port: int, batches: dict[str, int]) -> Fixture:
    """Migrate, register a client, link an account and mint tokens, all in-process."""
    from sqlalchemy import insert

    from gateway.app import Gateway
    from gateway.persistence.database import migrate
    from gateway.services.accounts import PendingAccount
    from gateway.settings import Settings
    from oauth_server.crypto import new_id, new_token
    from oauth_server.tables import families, tokens

    settings = Settings.from_env(server_env(data_dir, port))
    migrate(settings.effective_database_url)
    gateway = Gateway.build(settings)
    try:
        client, secret = gateway.oauth.registry.create(
            name="Bench App", redirect_uris=[REDIRECT], scopes=[SCOPE],
            rotate_refresh_tokens=True)  # the bench measures rotation, the costlier refresh
        assert secret is not None
        path = gateway.accounts.park_credentials("bench", {"username": "bench@example.com",
                                                           "password": "unused"})
        linked = gateway.accounts.link(client.client_id, PendingAccount(
            "memory", "memory", "bench@example.com", "bench@example.com", path), None)
        store = gateway.oauth.store
        code = store.save_code(client_id=client.client_id, redirect_uri=REDIRECT, scope=SCOPE,
                               subject=linked.subject, linking_profile=None,
                               code_challenge=None)
        record = store.find_code(code, client.client_id)
        assert record is not None
        issued = store.redeem_code(record)
        assert issued is not None
        fixture = Fixture(client.client_id, secret, linked.subject, issued.access_token,
                          issued.refresh_token)

        # Bulk families: the rows GrantStore._new_family/_issue write, in one transaction.
        life = settings
        digest = store.keys.token_digest
        now = dt.datetime.now(dt.UTC)
        fam_expires = now + dt.timedelta(seconds=life.refresh_token_ttl)
        at_expires = now + dt.timedelta(seconds=life.access_token_ttl)
        rt_expires = now + dt.timedelta(seconds=life.refresh_token_idle_ttl)
        with gateway.engine.begin() as conn:
            for name, count in batches.items():
                if count <= 0:
                    continue
                fam_rows, tok_rows, rts = [], [], []
                for _ in range(count):
                    fid, at, rt = new_id("fam_"), new_token(), new_token()
                    fam_rows.append({"id": fid, "client_id": client.client_id,
                                     "subject": linked.subject, "scope": SCOPE,
                                     "created_at": now, "expires_at": fam_expires})
                    tok_rows.append({"token_hash": digest(at), "kind": "access",
                                     "family_id": fid, "scope": SCOPE, "created_at": now,
                                     "expires_at": at_expires})
                    tok_rows.append({"token_hash": digest(rt), "kind": "refresh",
                                     "family_id": fid, "scope": SCOPE, "created_at": now,
                                     "expires_at": rt_expires})
                    rts.append(rt)
                conn.execute(insert(families), fam_rows)
                conn.execute(insert(tokens), tok_rows)
                file = data_dir / f"refresh-{name}.txt"
                file.write_text("\n".join(rts) + "\n")
                fixture.token_files[name] = file
    finally:
        gateway.close()
    return fixture



def http(method: str, url: str, *, headers: dict[str, str] | None = None,
         body: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def sanity(server: Server, fx: Fixture) -> None:
    status, body = http("GET", server.url("/v1/userinfo"),
                        headers={"Authorization": f"Bearer {fx.access_token}"})
    assert status == 200 and body.get("sub") == fx.subject, (status, body)
    status, body = http("POST", server.url("/oauth/token"), body={
        "grant_type": "refresh_token", "refresh_token": fx.refresh_token,
        "client_id": fx.client_id, "client_secret": fx.client_secret})
    assert status == 200 and body.get("refresh_token"), (status, body)
    # The rotated access token works; the one refresh token is spent.
    status, _ = http("GET", server.url("/v1/userinfo"),
                     headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200, status
