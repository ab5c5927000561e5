"""`calgate serve --host H --port P` listens where it is told, over CALGATE_HOST/CALGATE_PORT,
in the uvicorn worker processes too, and the default issuer names that port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.e2e_server import REPO_ROOT
from tests.support.processes import free_port, stop_process
from tests.support.waiting import eventually


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_serve_flags_override_the_environment(tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")} | {
        "CALGATE_DATA_DIR": str(tmp_path / "data"),
        "CALGATE_HOST": "127.0.0.2",  # both must lose to the flags
        "CALGATE_PORT": str(other),
        "CALGATE_API_WORKERS": "2",  # the app is built in the worker processes, from env
    }
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--host", "127.0.0.1",
             "--port", str(port)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        health = eventually(lambda: (r := _get(f"{base}/healthz")) is not None
                            and r.status_code == 200 and r, timeout=90)
        assert health.status_code == 200
        meta = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=5).json()
        assert meta["issuer"] == base
        assert _get(f"http://127.0.0.2:{other}/healthz") is None
    finally:
        stop_process(proc)
    assert proc.returncode is not None


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")} | {
        "CALGATE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "gateway.cli.main", "serve", "--port", "70000"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "between 1 and 65535" in done.stderr
