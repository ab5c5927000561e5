"""A production-like Calgate deployment for bench/run_latency_bench.py: a fresh PostgreSQL
database, one ``calgate serve`` process and one ``calgate worker`` process
(``CALGATE_WORKER_MODE=external``, default worker tick), the local secret store, plus an
in-process ``Gateway`` on the same database and secrets to register the client app, link
accounts, mint tokens and read the timestamps the processes write.

    with Deployment(workdir, {"CALGATE_SYNC_INTERVAL": "30"}) as d:
        ...   # d.url, d.gateway, d.register_client(), d.token(subject), d.sdk(token)

Both processes run in sessions of their own and are stopped by SIGTERM on their PID
(SIGKILL if they linger); the database is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from bench_common import PYTHON, ROOT

from tests.support.db import postgres_database
from tests.support.processes import free_port, stop_process

REDIRECT = "https://bench.example/cb"
SCOPES = ["read_account", "list_calendars", "read_events", "read_free_busy",
          "create_event", "delete_event"]


@dataclass(frozen=True, slots=True)
class App:
    """The client app: its id and secret (the receiver checks signatures with it)."""

    client_id: str
    secret: str


class Deployment:
    """API process + worker process on a fresh PostgreSQL database."""

    def __init__(self, workdir: Path, extra_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.extra_env = extra_env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = ""
        self.gateway: Any = None
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self._stack = ExitStack()

    def env(self) -> dict[str, str]:
        """The environment of both processes (none of this shell's CALGATE_* settings)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        return base | {
            "CALGATE_DATABASE_URL": self.database_url,
            "CALGATE_DATA_DIR": str(self.workdir / "data"),
            "CALGATE_PUBLIC_URL": self.url, "CALGATE_HOST": "127.0.0.1",
            "CALGATE_PORT": str(self.port), "CALGATE_LOG_LEVEL": "warning",
            "CALGATE_WORKER_MODE": "external",
            # The receiver: plain http on loopback, allowed as an operator would.
            "CALGATE_CALLBACK_HTTP_HOSTS": "127.0.0.1",
            # The receiver, Radicale and the emulator: loopback, allowed as an operator would.
            "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "PYTHONUNBUFFERED": "1",
        } | self.extra_env

    def start(self) -> Deployment:
        from gateway.app import Gateway
        from gateway.persistence.database import migrate
        from gateway.settings import Settings

        try:
            self.database_url = self._stack.enter_context(postgres_database())
            (self.workdir / "data").mkdir(parents=True, exist_ok=True)
            settings = Settings.from_env(self.env())
            migrate(settings.effective_database_url)
            self.gateway = Gateway.build(settings)
            self._stack.callback(self.gateway.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def start_api(self, timeout: float = 60.0) -> None:
        """``calgate serve --no-migrate``, until /healthz answers."""
        self.api = self._spawn("api", ["serve", "--no-migrate"])
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"calgate serve did not start: {self.log('api')}")
            time.sleep(0.05)

    def start_processes(self, timeout: float = 60.0) -> None:
        """``calgate serve --no-migrate`` (healthy first), then ``calgate worker``."""
        self.start_api(timeout)
        self.worker = self._spawn("worker", ["worker"])

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([str(PYTHON), "-m", "gateway.cli.main", *args], cwd=ROOT,
                                    env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._stack.callback(stop_process, proc)
        return proc

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.api, self.worker))

    def stop(self) -> None:
        """Worker, then API (by PID), then the in-process gateway, then the database."""
        self._stack.close()

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- the client app and its accounts ----------------------------------------------------
    def register_client(self) -> App:
        client, secret = self.gateway.oauth.registry.create(
            name="Latency Bench", redirect_uris=[REDIRECT], scopes=["read_write"])
        assert secret is not None
        return App(str(client.client_id), secret)

    def link(self, client_id: str, provider: str, name: str, upstream_id: str,
             credentials: dict[str, str]) -> Any:
        """An upstream account linked as the consent step would (park + link)."""
        import uuid

        from gateway.services.accounts import PendingAccount

        parked = self.gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
        return self.gateway.accounts.link(client_id, PendingAccount(
            provider, provider, name, upstream_id, parked), None, SCOPES)

    def token(self, client_id: str, subject: str) -> str:
        """A bearer token through the real save_code + redeem_code."""
        store = self.gateway.oauth.store
        code = store.save_code(client_id=client_id, redirect_uri=REDIRECT,
                               scope=" ".join(SCOPES), subject=subject, linking_profile=None,
                               code_challenge=None)
        issued = store.redeem_code(store.find_code(code, client_id))
        assert issued is not None
        return str(issued.access_token)

    def sdk(self, app: App, token: str) -> Any:
        import pycronofy

        client = pycronofy.Client(client_id=app.client_id, client_secret=app.secret,
                                  access_token=token)
        client.request_handler.base_url = self.url
        return client

    # -- what the processes wrote ---------------------------------------------------------
    def initial_syncs_pending(self) -> int:
        from sqlalchemy import func, select

        from gateway.persistence.tables import profiles

        with self.gateway.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(profiles).where(
                profiles.c.initial_sync_required.is_(True))).scalar_one())

    def schedule(self, profile_id: str) -> dict[str, float | None]:
        """The profile's next poll, sync lease and last push request (epoch seconds)."""
        from sqlalchemy import select

        from gateway.persistence.tables import profiles

        with self.gateway.engine.connect() as conn:
            row = conn.execute(select(profiles.c.next_sync_at, profiles.c.sync_lease_until,
                                      profiles.c.sync_requested_at)
                               .where(profiles.c.id == profile_id)).one()
        return {"next_sync_at": _epoch(row.next_sync_at),
                "lease_until": _epoch(row.sync_lease_until),
                "requested_at": _epoch(row.sync_requested_at)}

    def notification(self, public_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """When a notification was queued and its delivery attempt (epoch seconds). The
        worker logs the attempt after the receiver answered, so wait for it a moment."""
        deadline = time.monotonic() + timeout
        while True:
            row, tries = self._notification(public_id)
            if (row.delivered_at is not None and tries) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        last = tries[-1] if tries else None
        return {"queued_at": _epoch(row.created_at), "delivered_at": _epoch(row.delivered_at),
                "attempts": len(tries),
                # The attempt is logged when it ends: its POST began duration_ms earlier.
                "post_started_at": (_epoch(last.at) or 0) - last.duration_ms / 1000
                if last is not None else None}

    def _notification(self, public_id: str) -> tuple[Any, list[Any]]:
        from sqlalchemy import select

        from gateway.persistence.tables import deliveries, notifications

        with self.gateway.engine.connect() as conn:
            row = conn.execute(select(notifications.c.created_at, notifications.c.delivered_at)
                               .where(notifications.c.public_id == public_id)).one()
            tries = list(conn.execute(select(deliveries.c.at, deliveries.c.duration_ms)
                                      .where(deliveries.c.notification_id == public_id)
                                      .order_by(deliveries.c.id)).all())
        return row, tries

    def stagger(self, profile_ids: list[str], period: float) -> int:
        """Spread the profiles' next polls evenly over one period (as if linked at
        different moments); a profile being synced right now keeps its own."""
        from datetime import UTC, timedelta

        from sqlalchemy import or_, update

        from gateway.persistence.tables import profiles

        moved = 0
        now = datetime.now(UTC)
        with self.gateway.engine.begin() as conn:
            for n, profile_id in enumerate(profile_ids):
                at = now + timedelta(seconds=period * (n + 1) / len(profile_ids))
                moved += conn.execute(update(profiles).where(
                    profiles.c.id == profile_id,
                    or_(profiles.c.sync_lease_until.is_(None),
                        profiles.c.sync_lease_until < now)).values(next_sync_at=at)).rowcount
        return moved

    def server_version(self) -> str:
        from sqlalchemy import text

        with contextlib.suppress(Exception), self.gateway.engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
        return "unknown"


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    from datetime import UTC

    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
