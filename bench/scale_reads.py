"""The API's read throughput for bench/run_scale_bench.py: wrk against ``GET /v1/events``
for one linked account, with the CPU every process group used meanwhile.

wrk runs as a child process (started here, waited for, killed by its PID on timeout) with
bench/summary.lua, which adds a machine-readable summary line to wrk's report.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

from bench_common import BENCH
from scale_procs import Groups, Window

SUMMARY_LUA = BENCH / "summary.lua"


@dataclass
class ReadRun:
    name: str
    command: list[str]
    summary: dict[str, Any]
    window: Window

    @property
    def seconds(self) -> float:
        return float(self.summary["duration_us"]) / 1e6

    @property
    def ok(self) -> int:
        return int(self.summary["requests"]) - int(self.summary["non_2xx"])

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        errors = sum(int(s[k]) for k in ("connect_errors", "read_errors", "write_errors",
                                         "timeouts"))
        return {"name": self.name, "rps": self.rps, "requests": int(s["requests"]),
                "non_2xx": int(s["non_2xx"]), "socket_errors": errors,
                "p50_ms": s["p50_us"] / 1000, "p90_ms": s["p90_us"] / 1000,
                "p99_ms": s["p99_us"] / 1000, "max_ms": s["max_us"] / 1000,
                "bytes_per_request": int(s["bytes"]) / max(1, int(s["requests"])),
                "seconds": self.seconds, "command": " ".join(self.command),
                **self.window.as_dict()}


def wrk_command(url: str, token: str, seconds: int, conns: int) -> list[str]:
    return ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {token}", "-s", str(SUMMARY_LUA), url]


def run(name: str, command: list[str], groups: Groups, timeout: float = 120) -> ReadRun:
    window = Window(groups).start()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # Popen.kill: SIGKILL to wrk's own PID
        proc.communicate()
        raise
    window.stop()
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err[-1000:]} {out[-1000:]}")
    return ReadRun(name, command, json.loads(line.removeprefix("BENCH_JSON ")), window)


class Background:
    """A :func:`run` in a thread, so a sync round can be timed while wrk loads the API."""

    def __init__(self, name: str, command: list[str], groups: Groups) -> None:
        self.result: ReadRun | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(name, command, groups))
        self._thread.start()

    def _run(self, name: str, command: list[str], groups: Groups) -> None:
        try:
            self.result = run(name, command, groups)
        except BaseException as exc:  # handed to the caller by join()
            self.error = exc

    def join(self) -> ReadRun:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result
