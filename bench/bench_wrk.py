"""wrk runs: the command lines, and one measured run with its CPU and memory samples."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_server import RssSampler, Server, machine_cpu, own_cpu
from bench_setup import PY_SPY, REFRESH_LUA, SUMMARY_LUA, Fixture


@dataclass
class WrkRun:
    name: str
    command: list[str]
    stdout: str
    summary: dict[str, Any]
    cpu_seconds: float
    rss_max_kb: int
    other_cores: float  # CPU used meanwhile by processes other than the server and wrk

    @property
    def seconds(self) -> float:
        return float(self.summary["duration_us"]) / 1e6

    @property
    def good(self) -> int:
        s = self.summary
        if "ok" in s:
            return int(s["ok"])
        return int(s["requests"]) - int(s["non_2xx"])

    @property
    def rps(self) -> float:
        return self.good / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(1, int(self.summary["requests"]))


def wrk_userinfo(server: Server, fx: Fixture, seconds: int, conns: int, threads: int
                 ) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {fx.access_token}", "-s", str(SUMMARY_LUA),
            server.url("/v1/userinfo")]


def wrk_refresh(server: Server, fx: Fixture, batch: str, seconds: int, conns: int,
                threads: int) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-s", str(REFRESH_LUA), server.url("/oauth/token"), "--",
            str(fx.token_files[batch]), fx.client_id, fx.client_secret, str(threads)]


def run_wrk(name: str, command: list[str], server: Server,
            profile: tuple[Path, int, bool] | None = None) -> WrkRun:
    """Run wrk against the server, sampling its RSS and CPU; optionally under py-spy.

    ``profile`` is (raw output file, seconds, GIL-holder-only).
    """
    sampler = RssSampler(server)
    cpu0 = server.cpu_seconds()
    busy0, own0, wall0 = machine_cpu()[0], own_cpu(), time.monotonic()
    spy = None
    if profile is not None:
        out, duration, gil = profile
        spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(server.pid),
                                "--duration", str(duration), "--rate", "250", "--function",
                                *(["--gil"] if gil else []),
                                "--format", "raw", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let py-spy attach before load starts
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True,
                              timeout=120)
    finally:
        cpu = server.cpu_seconds() - cpu0
        sampler.stop()
        if spy is not None:
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0:
                print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
        busy = machine_cpu()[0] - busy0 - (own_cpu() - own0) - cpu
        other = max(0.0, busy / (time.monotonic() - wall0))
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    report = "\n".join(x for x in done.stdout.splitlines() if not x.startswith("BENCH_JSON"))
    return WrkRun(name, command, report, summary, cpu, sampler.max_kb, other)

