"""Summaries of py-spy's raw collapsed stacks: where the samples go, by area and function."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")

# Self time is charged to the innermost frame matching one of these (first rule wins per
# frame). py-spy charges time spent in C (sqlite3, uvloop, hashlib) to the calling frame.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("new SQLite connections (connect + 4 PRAGMAs)",
     ("_sqlite_pragmas (", "DefaultDialect.connect (")),
    ("sqlite3 C calls (execute, fetch, commit)",
     ("DefaultDialect.do_execute (", "DefaultDialect.do_executemany (",
      "DefaultDialect.do_commit (", "DefaultDialect.do_rollback (",
      "CursorFetchStrategy.fetch")),
    ("SQLAlchemy pool checkout/return", ("sqlalchemy/pool/",)),
    ("SQLAlchemy cache-key generation", ("sqlalchemy/sql/cache_key.py",
                                         "sqlalchemy/sql/traversals.py")),
    ("SQLAlchemy SQL compilation", ("sqlalchemy/sql/compiler.py",)),
    ("SQLAlchemy type processing (DateTime/JSON)", ("sqlalchemy/sql/sqltypes.py",
                                                    "sqlalchemy/dialects/sqlite/",
                                                    "sqlalchemy/engine/_processors")),
    ("SQLAlchemy statement construction (select/where/join)", ("sqlalchemy/sql/",)),
    ("SQLAlchemy execution and result machinery", ("sqlalchemy/",)),
    ("anyio worker-thread hop (to_thread, queue, thread wake-up)",
     ("anyio/", "queue.py", "threading.py", "concurrent/futures")),
    ("Authlib core", ("authlib/",)),
    ("JSON encode/decode", ("json/",)),
    ("crypto (HMAC digests, AES-GCM, token randomness)",
     ("hmac.py", "hashlib", "cryptography/", "secrets.py", "random.py", "oauth_server/crypto")),
    ("logging", ("logging/",)),
    ("Starlette (routing, Request, responses)", ("starlette/",)),
    ("uvicorn HTTP protocol (httptools)", ("uvicorn/protocols", "uvicorn/middleware")),
    ("event loop in C (uvloop: epoll, sockets, callbacks)", ("Runner.run (asyncio/runners",)),
    ("asyncio (tasks, futures)", ("asyncio/",)),
    ("oauth_server code (own frames)", ("oauth_server/",)),
    ("gateway code (own frames)", ("gateway/",)),
]
# Parked threads, by (innermost frame, its caller): anyio's workers waiting for a job, the
# token lane waiting for requests, the WAL checkpointer waiting for a batch.
_IDLE: tuple[tuple[str, str], ...] = (
    ("Condition.wait (threading.py", "Queue.get (queue.py"),
    ("TokenLane._take (", "TokenLane._serve ("),
    ("Condition.wait (threading.py", "Event.wait (threading.py"),
)


def _frame_name(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    file = m["file"].rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m['func']} ({file})"


def _area(frame: str) -> str | None:
    for name, needles in AREAS:
        if any(n in frame for n in needles):
            return name
    return None


@dataclass
class Profile:
    name: str
    mode: str
    total: int
    idle: int
    areas: list[tuple[str, int]]
    ours: list[tuple[str, int]]
    self_top: list[tuple[str, int]]


def analyse(name: str, mode: str, raw: Path, top: int = 12) -> Profile:
    """Sample shares by area (self) and by project function (inclusive) from py-spy's raw
    collapsed stacks. py-spy's idle detection does not see parked threads (anyio's workers,
    the token lane, see ``_IDLE``) as idle here, so those stacks are dropped explicitly."""
    areas: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    self_c: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = stack.split(";")
        if len(frames) >= 2 and any(frames[-1].startswith(inner) and frames[-2].startswith(outer)
                                    for inner, outer in _IDLE):
            idle += count
            continue
        total += count
        names = [_frame_name(f) for f in frames]
        self_c[names[-1]] += count
        for f in reversed(frames):
            area = _area(f)
            if area is not None:
                areas[area] += count
                break
        else:
            areas["other"] += count
        for n in dict.fromkeys(names):
            if "(oauth_server/" in n or "(gateway/" in n:
                ours[n] += count
    return Profile(name, mode, total, idle, areas.most_common(), ours.most_common(top),
                   self_c.most_common(top))


def profile_markdown(p: Profile) -> str:
    def pct(c: int) -> str:
        return f"{100 * c / max(1, p.total):.1f}%"

    what = ("only the thread holding the GIL is sampled, so this is where the interpreter's "
            "one core goes" if p.mode == "gil" else
            "every thread is sampled, including threads waiting for the GIL, a pooled "
            f"connection or SQLite; {p.idle} samples of parked worker threads dropped")
    lines = [f"#### {p.name}: {p.mode} ({p.total} samples)", "", f"py-spy --{p.mode}: {what}.",
             "", "| area (self time, innermost matching frame) | samples |", "|---|---:|"]
    lines += [f"| {a} | {pct(c)} |" for a, c in p.areas if c / max(1, p.total) >= 0.005]
    lines += ["", "| project function (inclusive) | samples |", "|---|---:|"]
    lines += [f"| `{n}` | {pct(c)} |" for n, c in p.ours]
    lines += ["", "| function (self) | samples |", "|---|---:|"]
    lines += [f"| `{n}` | {pct(c)} |" for n, c in p.self_top]
    return "\n".join(lines)

