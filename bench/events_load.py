"""The server under load for bench/run_events_bench.py: one uvicorn worker as a subprocess,
wrk against it (with the server's CPU and RSS sampled from /proc), optional py-spy, and the
machine table. The same approach as bench/run_oauth_bench.py, kept here so the two
benchmarks can change independently.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_common as common  # noqa: E402

ROOT = BENCH.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"

# wrk script: a machine-readable summary line after wrk's own report.
SUMMARY_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m uvicorn gateway.asgi:build --factory --workers 1`` on 127.0.0.1."""

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

    def status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def rss_kb(self) -> int:
        return self.status("VmRSS")

    def hwm_kb(self) -> int:
        return self.status("VmHWM")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """Busy CPU seconds summed over all CPUs since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (wrk, py-spy)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_quiet(limit: float, threshold: float = 0.3) -> float:
    """Wait (at most ``limit`` s) until other processes use < ``threshold`` cores for 2 s;
    returns the load of the last second, in cores."""
    deadline = time.monotonic() + limit
    calm = 0
    while True:
        busy0, own0 = machine_cpu(), own_cpu()
        time.sleep(1.0)
        load = machine_cpu() - busy0 - (own_cpu() - own0)
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
            with contextlib.suppress(OSError, ValueError):
                self.max_kb = max(self.max_kb, self.server.rss_kb())
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


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
        return int(self.summary["requests"]) - int(self.summary["non_2xx"])

    @property
    def rps(self) -> float:
        return self.good / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(1, int(self.summary["requests"]))


def wrk_command(url: str, token: str, seconds: int, conns: int, threads: int,
                lua: Path) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {token}", "-s", str(lua), url]


def run_wrk(name: str, command: list[str], server: Server,
            profile: tuple[Path, int, bool] | None = None) -> WrkRun:
    """Run wrk against the server, sampling its RSS and CPU; optionally under py-spy
    (``profile``: raw output file, seconds, GIL-holder only)."""
    sampler = RssSampler(server)
    cpu0 = server.cpu_seconds()
    busy0, own0, wall0 = machine_cpu(), own_cpu(), time.monotonic()
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
        busy = machine_cpu() - busy0 - (own_cpu() - own0) - cpu
        other = max(0.0, busy / (time.monotonic() - wall0))
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    report = "\n".join(x for x in done.stdout.splitlines() if not x.startswith("BENCH_JSON"))
    return WrkRun(name, command, report, summary, cpu, sampler.max_kb, other)


def machine(extra: dict[str, str]) -> dict[str, str]:
    import datetime as dt

    import sqlalchemy
    import uvicorn

    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    wrk_v = wrk_v.split(" Copyright")[0].removeprefix("wrk ")
    return {**common.cpu_and_memory(),
            "uvicorn": uvicorn.__version__, "SQLAlchemy": sqlalchemy.__version__,
            "SQLite": __import__("sqlite3").sqlite_version, "wrk": wrk_v.strip(), **extra,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


# -- py-spy stacks of the API server ------------------------------------------------------
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")
API_AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("new SQLite connections", ("_sqlite_pragmas (", "DefaultDialect.connect (")),
    ("sqlite3 C calls (execute, fetch)",
     ("DefaultDialect.do_execute (", "DefaultDialect.do_executemany (",
      "CursorFetchStrategy.fetch", "DefaultDialect.do_commit (",
      "DefaultDialect.do_rollback (")),
    ("SQLAlchemy SQL compilation and cache keys",
     ("sqlalchemy/sql/compiler.py", "sqlalchemy/sql/cache_key.py",
      "sqlalchemy/sql/traversals.py")),
    ("SQLAlchemy type processing (DateTime, Boolean)",
     ("sqlalchemy/sql/sqltypes.py", "sqlalchemy/dialects/sqlite/",
      "sqlalchemy/engine/_processors")),
    ("SQLAlchemy statement construction", ("sqlalchemy/sql/",)),
    ("SQLAlchemy rows, results, pool", ("sqlalchemy/",)),
    ("unsealing event text (AES-GCM + JSON decode)",
     ("cryptography/", "gateway/sync/sealing.py")),
    ("JSON encode/decode", ("json/",)),
    ("zoneinfo / datetime formatting", ("zoneinfo", "_strptime", "datetime.py")),
    ("anyio worker-thread hop", ("anyio/", "queue.py", "threading.py", "concurrent/futures")),
    ("bearer auth and OAuth store", ("oauth_server/",)),
    ("Starlette", ("starlette/",)),
    ("uvicorn HTTP protocol", ("uvicorn/protocols", "uvicorn/middleware")),
    ("event loop in C (uvloop)", ("Runner.run (asyncio/runners",)),
    ("asyncio", ("asyncio/",)),
    ("gateway code (own frames)", ("gateway/",)),
]
_IDLE_WORKER = ("Condition.wait (threading.py", "Queue.get (queue.py")


def frame_name(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    file = m["file"].rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m['func']} ({file})"


@dataclass
class Stacks:
    title: str
    total: int
    dropped: int
    areas: list[tuple[str, int]]
    ours: list[tuple[str, int]]
    self_top: list[tuple[str, int]]


def summarise(title: str, raw: Path, areas_def: list[tuple[str, tuple[str, ...]]],
              keep: tuple[str, ...] = (), top: int = 14) -> Stacks:
    """Shares of py-spy samples by area (self time charged to the innermost matching
    frame), by project function (inclusive) and by function (self). Parked anyio worker
    threads are dropped; with ``keep``, only stacks holding one of those strings count."""
    areas: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    self_c: Counter[str] = Counter()
    total = dropped = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = stack.split(";")
        parked = (len(frames) >= 2 and frames[-1].startswith(_IDLE_WORKER[0])
                  and frames[-2].startswith(_IDLE_WORKER[1]))
        if parked or (keep and not any(k in stack for k in keep)):
            dropped += count
            continue
        total += count
        names = [frame_name(f) for f in frames]
        self_c[names[-1]] += count
        for f in reversed(frames):
            area = next((a for a, needles in areas_def if any(n in f for n in needles)),
                        None)
            if area is not None:
                areas[area] += count
                break
        else:
            areas["other"] += count
        for n in dict.fromkeys(names):
            if any(f"({p}/" in n for p in ("gateway", "providers", "oauth_server")):
                ours[n] += count
    return Stacks(title, total, dropped, areas.most_common(), ours.most_common(top),
                  self_c.most_common(top))


def stacks_markdown(s: Stacks, note: str = "") -> list[str]:
    def pct(c: int) -> str:
        return f"{100 * c / max(1, s.total):.1f}%"

    out = [f"#### {s.title} ({s.total} samples)", ""]
    if note:
        out += [note, ""]
    out += ["| area (self time, innermost matching frame) | samples |", "|---|---:|"]
    out += [f"| {a} | {pct(c)} |" for a, c in s.areas if c / max(1, s.total) >= 0.005]
    out += ["", "| project function (inclusive) | samples |", "|---|---:|"]
    out += [f"| `{n}` | {pct(c)} |" for n, c in s.ours]
    out += ["", "| function (self) | samples |", "|---|---:|"]
    out += [f"| `{n}` | {pct(c)} |" for n, c in s.self_top]
    return [*out, ""]
