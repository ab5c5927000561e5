"""A real Calgate server for the end-to-end tests, and a fake client app's redirect target.

    with GatewayServer(tmp_path) as server:            # migrated DB, uvicorn on a free port
        client = server.register_client(name="Mentor Hub", redirect_uris=[...], scopes=[...])
        ...                                            # drive server.url with a browser or SDK

    with CallbackServer() as callback:                 # http://127.0.0.1:<port>/callback
        ... callback.url ... callback.queries          # every query string it received

``GatewayServer`` runs ``python -m uvicorn tests.support.e2e_app:build --factory`` in its own
session (cwd = repository root) and stops it by SIGTERM on its PID, SIGKILL if it lingers.
Client apps are registered in-process, in the same database and secret store.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.persistence.database import migrate
from gateway.settings import Settings
from tests.support.e2e_app import build_gateway
from tests.support.processes import free_port, stop_process
from tests.support.waiting import Deadline

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RegisteredApp:
    """A client app registered for an end-to-end test; ``secret`` is None for public apps."""

    client_id: str
    secret: str | None
    redirect_uri: str


class GatewayServer:
    """One uvicorn process serving Calgate on a free loopback port."""

    def __init__(self, workdir: Path, database_url: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.extra_env = dict(env or {})
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.database_url = database_url or f"sqlite:///{self.workdir / 'calgate.db'}"
        self.port = 0
        self.url = ""
        self.log_path = self.workdir / "uvicorn.log"
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def settings(self) -> Settings:
        """The settings the server process runs with (for in-process access to its state)."""
        return Settings().replace(database_url=self.database_url, data_dir=self.data_dir,
                                  public_url=self.url, port=self.port,
                                  google_url=self.extra_env.get("CALGATE_GOOGLE_URL", ""))

    def start(self, timeout: float = 30.0, attempts: int = 3) -> GatewayServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(self.database_url)
        began = time.perf_counter()
        for attempt in range(attempts):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._spawn()
            try:
                self._wait_healthy(timeout)
                break
            except _EarlyExit:
                self.stop()
                if attempt == attempts - 1:  # the port was taken by someone else, thrice
                    raise
            except BaseException:
                self.stop()
                raise
        self.start_seconds = time.perf_counter() - began
        return self

    def env(self) -> dict[str, str]:
        """The environment of the server process (and of its ``calgate worker`` processes)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        return env | {
            "CALGATE_DATABASE_URL": self.database_url,
            "CALGATE_DATA_DIR": str(self.data_dir),
            "CALGATE_PUBLIC_URL": self.url,
            "CALGATE_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            # Loopback CalDAV servers and feeds; a quick worker so tests do not wait long.
            "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "CALGATE_WORKER_TICK": "0.3",
            "CALGATE_SYNC_INTERVAL": "1",
            # Several workers on one machine: no metrics port unless a test asks for one.
            "CALGATE_WORKER_METRICS_PORT": "0",
        } | self.extra_env

    def _spawn(self) -> None:
        env = self.env()
        command = [sys.executable, "-m", "uvicorn", "tests.support.e2e_app:build", "--factory",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                   "--timeout-graceful-shutdown", "5"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = Deadline(timeout)
        while not deadline.passed():
            if self._proc.poll() is not None:
                raise _EarlyExit(f"uvicorn exited with {self._proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"Calgate on {self.url} did not answer /healthz:\n{self.log()}")

    def spawn_worker(self, name: str, env: dict[str, str] | None = None
                     ) -> subprocess.Popen[bytes]:
        """A ``calgate worker`` process on the server's database and secret store (run the
        server with ``CALGATE_WORKER_MODE=external`` so that only these work). The caller
        stops it (``stop_process``), or kills it. ``env``: settings of this worker only."""
        with open(self.workdir / f"worker-{name}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway.cli.main", "worker"], cwd=REPO_ROOT,
                env=self.env() | (env or {}), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        """The server's output so far (last 4000 characters)."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server's own PID (graceful shutdown), SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        stop_process(proc, timeout)

    def register_client(self, *, name: str, redirect_uris: Sequence[str],
                        scopes: Sequence[str], **options: Any) -> RegisteredApp:
        """``registry.create(...)`` in this process, against the server's database and
        secret store (same server keys, so the secret checks out on the server)."""
        gateway = build_gateway(self.settings())
        try:
            client, secret = gateway.oauth.registry.create(
                name=name, redirect_uris=list(redirect_uris), scopes=list(scopes), **options)
        finally:
            gateway.close()
        return RegisteredApp(client.client_id, secret, client.redirect_uris[0])

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _EarlyExit(RuntimeError):
    """uvicorn exited before it was healthy (for instance: the port was taken meanwhile)."""


class CallbackServer:
    """A client app's redirect target: records every query and answers "Connected"."""

    def __init__(self, path: str = "/callback") -> None:
        self.path = path
        self.queries: list[dict[str, str]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> CallbackServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != owner.path:
                    self.send_error(404)
                    return
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                with owner._lock:
                    owner.raw.append(parts.query)
                    owner.queries.append(query)
                title = "Not connected" if "error" in query else "Connected"
                body = (
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<title>{title}</title></head><body style=\"font:16px sans-serif;"
                    f"margin:3rem\"><h1 id=\"result\">{title}</h1><p>The client app received: "
                    "<code id=\"query\" style=\"overflow-wrap:anywhere\">"
                    f"{html.escape(parts.query)}</code></p></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
