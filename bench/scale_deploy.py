"""The deployment bench/run_scale_bench.py measures: ``calgate serve`` with
``CALGATE_API_WORKERS`` uvicorn workers and ``workers`` separate ``calgate worker``
processes on a fresh PostgreSQL database, the local secret store in a shared data dir.

It is bench/latency_deploy.py's ``Deployment`` (fresh database, in-process ``Gateway`` for
linking and tokens, processes in sessions of their own, stopped by PID, database dropped)
with more processes and the scale run's settings.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from typing import Any

from bench_common import PYTHON, ROOT
from latency_deploy import Deployment


class ScaleDeployment(Deployment):
    """API processes + ``workers`` worker processes on a fresh PostgreSQL database."""

    def __init__(self, workdir: Any, api_workers: int, workers: int,
                 sync_interval: int) -> None:
        super().__init__(workdir, {
            "CALGATE_API_WORKERS": str(api_workers),
            "CALGATE_SECRET_BACKEND": "local",
            "CALGATE_SYNC_INTERVAL": str(sync_interval),
            "CALGATE_LOG_LEVEL": "warning",
        })
        self.api_workers = api_workers
        self.worker_count = workers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.metrics_ports: list[int] = []

    def start_workers(self) -> None:
        """The worker processes, each serving its metrics on a port of its own (the
        default port would go to the first one only)."""
        from tests.support.processes import free_port, stop_process

        for n in range(self.worker_count):
            port = free_port()
            env = self.env() | {"CALGATE_WORKER_METRICS_PORT": str(port)}
            with open(self.workdir / f"worker{n + 1}.log", "ab") as log:
                proc = subprocess.Popen([str(PYTHON), "-m", "gateway.cli.main", "worker"],
                                        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self._stack.callback(stop_process, proc)
            self.workers.append(proc)
            self.metrics_ports.append(port)
        self.worker = self.workers[0]

    def syncs_run(self) -> list[int]:
        """Syncs each worker has run so far (its ``calgate_sync_duration_seconds`` count)."""
        counts = []
        for port in self.metrics_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            counts.append(sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                              if line.startswith("calgate_sync_duration_seconds_count")))
        return counts

    def api_children(self) -> int:
        """The uvicorn worker processes ``calgate serve`` has started so far."""
        from scale_procs import descendants, snapshot

        assert self.api is not None
        procs = snapshot()
        return sum(1 for pid in descendants([self.api.pid], procs) - {self.api.pid}
                   if "python" in procs[pid].name)

    def wait_api_workers(self, timeout: float = 60.0) -> None:
        """uvicorn's supervisor answers /healthz from its first worker: wait for all (with
        one, uvicorn serves in the supervisor's process itself)."""
        if self.api_workers < 2:
            return
        deadline = time.monotonic() + timeout
        while self.api_children() < self.api_workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.api_children()} API workers started")
            time.sleep(0.1)

    def alive(self) -> bool:
        procs = [self.api, *self.workers]
        return all(p is not None and p.poll() is None for p in procs)
