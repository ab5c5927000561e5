"""The server under load for bench/run_events_bench.py: one uvicorn worker as a subprocess,
wrk against it (with the server's CPU and RSS sampled from /proc), optional py-spy, and the
machine table. The server, wrk runs and /proc sampling are the OAuth benchmark's
(bench_server.py, bench_wrk.py), shared.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_common as common  # noqa: E402
from bench_server import Server, wait_quiet  # noqa: E402, F401  (used as ld.*)
from bench_setup import PY_SPY, PYTHON, ROOT, SUMMARY_LUA, free_port  # noqa: E402, F401
from bench_wrk import WrkRun, run_wrk  # noqa: E402, F401


def wrk_command(url: str, token: str, seconds: int, conns: int, threads: int,
                lua: Path) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {token}", "-s", str(lua), url]


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
     ("cryptography/", "gateway/domain/sealing.py")),
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
