"""Issue 6's production-mode smoke test: `calgate serve` with 2 uvicorn workers and 2
`calgate worker` processes, on PostgreSQL and a real OpenBao reached with AppRole (set up
by the chart's own script), a real Radicale account, and pycronofy as the client app.

An authorize -> upsert -> read -> revoke journey; then OpenBao is sealed through its API:
/readyz turns unready, what needs the secret store answers 503 with Retry-After, and no
accepted write is lost; once unsealed, everything recovers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pycronofy
import pytest

from tests.support.baodev import OpenBaoDevServer
from tests.support.consent_http import consent_over_http
from tests.support.davservers import DavOwner, RadicaleServer
from tests.support.db import postgres_database
from tests.support.e2e_server import REPO_ROOT, CallbackServer
from tests.support.processes import free_port, stop_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.vault
SCOPE = "read_account list_calendars read_events read_free_busy create_event delete_event"
APPROLE_SCRIPT = REPO_ROOT / "helm" / "calgate" / "files" / "vault-role-approle.sh"


class Production:
    """The processes of a production deployment on this machine."""

    def __init__(self, workdir: Path, database_url: str, bao: OpenBaoDevServer) -> None:
        self.workdir = workdir
        out = workdir / "approle"
        done = bao.run_script(APPROLE_SCRIPT, OUT_DIR=str(out), HOME=str(workdir))
        assert done.returncode == 0, done.stderr
        self.role_id = out.joinpath("role-id").read_text().strip()
        self.secret_id = out.joinpath("secret-id").read_text().strip()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CALGATE_", "VAULT_", "BAO_"))} | {
            "CALGATE_DATABASE_URL": database_url,
            "CALGATE_DATA_DIR": str(workdir / "data"),
            "CALGATE_SECRET_BACKEND": "vault",
            "CALGATE_VAULT_ADDR": bao.url,
            "CALGATE_VAULT_AUTH": "approle",  # never the root token
            "CALGATE_VAULT_ROLE_ID": self.role_id,
            "CALGATE_VAULT_SECRET_ID_FILE": str(out / "secret-id"),
            "CALGATE_WORKER_MODE": "external",
            "CALGATE_API_WORKERS": "2",
            "CALGATE_HOST": "127.0.0.1",
            "CALGATE_PORT": str(self.port),
            "CALGATE_PUBLIC_URL": self.url,
            "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",  # Radicale on loopback
            "CALGATE_WORKER_TICK": "0.5",
            "CALGATE_SYNC_INTERVAL": "2",
            "CALGATE_SHUTDOWN_GRACE": "3",
            "CALGATE_AUTH_CACHE_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def calgate(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "gateway.cli.main", *args], cwd=REPO_ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def spawn(self, name: str, *args: str) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli.main", *args], cwd=REPO_ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*.log"))

    def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for name, proc in self.processes.items():
            stop_process(proc, timeout=15)
            codes[name] = proc.returncode
        return codes


@pytest.fixture
def production(tmp_path: Path) -> Iterator[tuple[Production, OpenBaoDevServer, Any]]:
    with (OpenBaoDevServer() as bao, postgres_database() as url,
          RadicaleServer(users={"alice": "wonderland"}) as radicale):
        owner = DavOwner(radicale.url, "alice", "wonderland")
        owner.make_calendar("Work")
        deployment = Production(tmp_path, url, bao)
        try:
            yield deployment, bao, radicale
        finally:
            deployment.stop()
            owner.close()


def sdk(prod: Production, app: dict[str, Any]) -> pycronofy.Client:
    client = pycronofy.Client(client_id=app["client_id"], client_secret=app["client_secret"])
    client.request_handler.base_url = prod.url
    client.app_base_url = prod.url
    return client


def authorize(prod: Production, app: dict[str, Any], radicale: Any,
              callback: CallbackServer) -> pycronofy.Client:
    client = sdk(prod, app)
    query = consent_over_http(
        client.user_auth_link(callback.url, scope=SCOPE, state="prod"), prod.url, callback,
        "caldav", {"server_url": radicale.url, "username": "alice", "password": "wonderland"})
    client.get_authorization_from_code(query["code"], redirect_uri=callback.url)
    return client


def event(event_id: str, days: int) -> dict[str, str]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"event_id": event_id, "summary": f"Session {event_id}", "tzid": "Etc/UTC",
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def summaries(owner: DavOwner) -> list[str]:
    """Every event's summary on Radicale, read by the owner (not through Calgate)."""
    found = []
    for calendar in owner.principal.calendars():
        found += [str(e.icalendar_component.get("SUMMARY", "")) for e in calendar.events()]
    return found


def managed_ids(client: pycronofy.Client) -> set[str]:
    return {e["event_id"] for e in client.read_events(
        only_managed=True, tzid="Etc/UTC",
        from_date=datetime.now(UTC).date().isoformat(),
        to_date=(datetime.now(UTC) + timedelta(days=30)).date().isoformat())}


def test_production_mode_journey_and_a_sealed_vault(production, tmp_path: Path) -> None:
    prod, bao, radicale = production
    prod.calgate("migrate")
    prod.spawn("api", "serve", "--no-migrate")
    prod.spawn("worker-1", "worker")
    prod.spawn("worker-2", "worker")
    eventually(lambda: prod.status("/readyz") == 200, timeout=60)

    with CallbackServer() as callback:
        app = json.loads(prod.calgate(
            "clients", "create", "--name", "Smoke Test App", "--redirect-uri", callback.url,
            "--scope", SCOPE, "--legacy-no-pkce"))
        first = authorize(prod, app, radicale, callback)
        used_first = [first.auth.access_token, first.auth.refresh_token]
        calendar_id = eventually(first.list_calendars, timeout=60)[0]["calendar_id"]
        first.upsert_event(calendar_id, event("journey-1", 1))
        eventually(lambda: "journey-1" in managed_ids(first), timeout=60)
        first.revoke_authorization()
        with pytest.raises(pycronofy.exceptions.PyCronofyRequestError):
            first.list_calendars()

        second = authorize(prod, app, radicale, callback)
        calendar_id = eventually(second.list_calendars, timeout=60)[0]["calendar_id"]
        headers = {"Authorization": f"Bearer {second.auth.access_token}"}
        used = [second.auth.access_token, second.auth.refresh_token]
        second.upsert_event(calendar_id, event("before-seal", 2))
        eventually(lambda: "before-seal" in managed_ids(second), timeout=60)

        bao.seal()
        eventually(lambda: prod.status("/readyz") == 503, timeout=30)
        accepted, refused = [], []
        with httpx.Client(base_url=prod.url, timeout=30) as http:
            for i in range(6):  # spread over both API processes
                body = event(f"during-seal-{i}", 3 + i)
                r = http.post(f"/v1/calendars/{calendar_id}/events", json=body,
                              headers=headers)
                assert r.status_code in (202, 503), r.text
                if r.status_code == 503:
                    assert int(r.headers["Retry-After"]) > 0
                    assert r.json() == {"error": "service_unavailable"}
                    refused.append(body)
                else:
                    accepted.append(body)
            # Linking needs the secret store (credentials go to Vault): 503, not a crash.
            link = sdk(prod, app).user_auth_link(callback.url, scope=SCOPE, state="sealed")
            flow = http.get(link, follow_redirects=False)
            assert flow.status_code == 303
            flow_url = prod.url + flow.headers["location"]
            page = http.get(flow_url)
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            http.post(f"{flow_url}/provider", data={"csrf_token": token, "provider": "caldav"})
            r = http.post(f"{flow_url}/connect", data={
                "csrf_token": token, "server_url": radicale.url, "username": "alice",
                "password": "wonderland"})
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert prod.status("/healthz") == 200  # alive, only not ready
        time.sleep(3)  # the workers try the accepted writes meanwhile, and must keep them
        upstream = DavOwner(radicale.url, "alice", "wonderland")
        assert not any("during-seal" in s for s in summaries(upstream)), \
            "applied with the credentials in a sealed Vault?"

        bao.unseal()
        eventually(lambda: prod.status("/readyz") == 200, timeout=60)
        for body in refused:  # the client retries what was refused
            second.upsert_event(calendar_id, body)
        wanted = {"before-seal"} | {b["event_id"] for b in accepted + refused}
        eventually(lambda: wanted <= managed_ids(second), timeout=90)
        assert len(wanted) == 7
        # The app's reads show its writes at once (read-your-writes): wait for Radicale.
        eventually(lambda: all(f"Session {w}" in summaries(upstream) for w in wanted),
                   timeout=90)
        on_radicale = summaries(upstream)
        assert all(on_radicale.count(f"Session {w}") == 1 for w in wanted), on_radicale
        upstream.close()
        print(f"during the seal: {len(accepted)} writes accepted, {len(refused)} refused")
        second.revoke_authorization()

    codes = prod.stop()
    assert codes == {"api": 0, "worker-1": 0, "worker-2": 0}, codes
    logs = prod.logs()
    for secret in (app["client_secret"], prod.secret_id, "wonderland", *used, *used_first):
        assert secret and secret not in logs
