"""The uvicorn server under test, and what /proc says about it and the rest of the machine."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from bench_setup import PYTHON, ROOT


class Server:
    """``python -m uvicorn gateway.asgi:build --factory --workers 1`` on 127.0.0.1, with
    ``env``'s CALGATE_* settings (``CALGATE_PORT`` says where) and none of this shell's."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = int(env["CALGATE_PORT"])
        self.log_path = data_dir / "uvicorn.log"
        self._log = self.log_path.open("wb")
        self.cmd = [str(PYTHON), "-m", "uvicorn", "gateway.asgi:build", "--factory",
                    "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "warning"]
        full = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")} | env
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=full, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(self.url("/healthz"), timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()

    def status(self) -> dict[str, str]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
        return out

    def rss_kb(self) -> int:
        return int(self.status()["VmRSS"].split()[0])

    def hwm_kb(self) -> int:
        return int(self.status()["VmHWM"].split()[0])

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all CPUs since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / hz, sum(values) / hz


def own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (wrk, py-spy)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_quiet(limit: float, threshold: float = 0.3) -> float:
    """Wait (at most ``limit`` s) until other processes use < ``threshold`` cores for 2 s.

    Returns the load seen in the last window, in cores.
    """
    deadline = time.monotonic() + limit
    calm = 0
    while True:
        busy0, own0 = machine_cpu()[0], own_cpu()
        time.sleep(1.0)
        load = machine_cpu()[0] - busy0 - (own_cpu() - own0)
        calm = calm + 1 if load < threshold else 0
        if calm >= 2 or time.monotonic() >= deadline:
            return load


class RssSampler:
    """Polls the server's VmRSS every 100 ms; keeps the maximum."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.max_kb = max(self.max_kb, self.server.rss_kb())
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

