"""Benchmark: refresh-token grants/s and bearer GET /v1/userinfo/s on one uvicorn worker.

Run from the repository root:

    .venv/bin/python bench/run_oauth_bench.py            # measure, write bench/RESULTS.md
    .venv/bin/python bench/run_oauth_bench.py --profile  # also py-spy each endpoint

What it does (see bench/README.md):

1. A fresh temp dir holds the SQLite database and the local secret store. The schema is
   migrated, a confidential client is registered and one account with one profile linked.
2. Tokens are minted in-process against that database: one family through the real
   ``save_code`` + ``redeem_code`` path (its access token drives the userinfo run), and
   many more refresh-token families bulk-inserted with the same digests and row shapes
   ``GrantStore._issue`` writes (each refresh rotates, so every request needs its own).
3. One uvicorn worker (``python -m uvicorn gateway.asgi:build --factory --workers 1``) is
   started as a subprocess; wrk, a second process, drives 32 connections at it, after a
   warm-up, while the server's RSS and CPU time are sampled from /proc.
4. A Markdown report goes to stdout and to bench/RESULTS.md. The server is always stopped
   with SIGTERM on its PID.

Traffic stays on 127.0.0.1. The whole run takes about 1 minute (2 with --profile).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

PYTHON = ROOT / ".venv" / "bin" / "python"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
SUMMARY_LUA = BENCH / "summary.lua"
REFRESH_LUA = BENCH / "refresh.lua"
REDIRECT = "https://bench.example/cb"
SCOPE = "read_write"

TARGETS = {"refresh_rps": 1500.0, "userinfo_rps": 5000.0, "p99_ms": 25.0, "rss_mb": 200.0}


# -- setup --------------------------------------------------------------------------------
@dataclass
class Fixture:
    client_id: str
    client_secret: str
    subject: str
    access_token: str
    refresh_token: str  # minted through redeem_code; spent by the sanity check
    token_files: dict[str, Path] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    # Only the settings a run may vary (CALGATE_BENCH_* → CALGATE_*) reach the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
    env |= {k.replace("CALGATE_BENCH_", "CALGATE_"): v for k, v in os.environ.items()
            if k.startswith("CALGATE_BENCH_")}
    env |= {"CALGATE_DATA_DIR": str(data_dir), "CALGATE_PORT": str(port),
            "CALGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", "CALGATE_LOG_LEVEL": "warning"}
    return env


def prepare(data_dir: Path, port: int, batches: dict[str, int]) -> Fixture:
    """Migrate, register a client, link an account and mint tokens, all in-process."""
    from sqlalchemy import insert

    from gateway.app import Gateway
    from gateway.persistence.database import migrate
    from gateway.services.accounts import PendingAccount
    from gateway.settings import Settings
    from oauth_server.crypto import new_id, new_token
    from oauth_server.tables import families, tokens

    settings = Settings.from_env(server_env(data_dir, port))
    migrate(settings.effective_database_url)
    gateway = Gateway.build(settings)
    try:
        client, secret = gateway.oauth.registry.create(
            name="Bench App", redirect_uris=[REDIRECT], scopes=[SCOPE])
        assert secret is not None
        path = gateway.accounts.park_credentials("bench", {"username": "bench@example.com",
                                                           "password": "unused"})
        linked = gateway.accounts.link(client.client_id, PendingAccount(
            "memory", "memory", "bench@example.com", "bench@example.com", path), None)
        store = gateway.oauth.store
        code = store.save_code(client_id=client.client_id, redirect_uri=REDIRECT, scope=SCOPE,
                               subject=linked.subject, linking_profile=None,
                               code_challenge=None)
        record = store.find_code(code, client.client_id)
        assert record is not None
        issued = store.redeem_code(record)
        assert issued is not None
        fixture = Fixture(client.client_id, secret, linked.subject, issued.access_token,
                          issued.refresh_token)

        # Bulk families: the rows GrantStore._new_family/_issue write, in one transaction.
        life = settings
        digest = store.keys.token_digest
        now = dt.datetime.now(dt.UTC)
        fam_expires = now + dt.timedelta(seconds=life.refresh_token_ttl)
        at_expires = now + dt.timedelta(seconds=life.access_token_ttl)
        rt_expires = now + dt.timedelta(seconds=life.refresh_token_idle_ttl)
        with gateway.engine.begin() as conn:
            for name, count in batches.items():
                if count <= 0:
                    continue
                fam_rows, tok_rows, rts = [], [], []
                for _ in range(count):
                    fid, at, rt = new_id("fam_"), new_token(), new_token()
                    fam_rows.append({"id": fid, "client_id": client.client_id,
                                     "subject": linked.subject, "scope": SCOPE,
                                     "created_at": now, "expires_at": fam_expires})
                    tok_rows.append({"token_hash": digest(at), "kind": "access",
                                     "family_id": fid, "scope": SCOPE, "created_at": now,
                                     "expires_at": at_expires})
                    tok_rows.append({"token_hash": digest(rt), "kind": "refresh",
                                     "family_id": fid, "scope": SCOPE, "created_at": now,
                                     "expires_at": rt_expires})
                    rts.append(rt)
                conn.execute(insert(families), fam_rows)
                conn.execute(insert(tokens), tok_rows)
                file = data_dir / f"refresh-{name}.txt"
                file.write_text("\n".join(rts) + "\n")
                fixture.token_files[name] = file
    finally:
        gateway.close()
    return fixture


# -- the server ---------------------------------------------------------------------------
class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.log_path = data_dir / "uvicorn.log"
        self._log = self.log_path.open("wb")
        self.cmd = [str(PYTHON), "-m", "uvicorn", "gateway.asgi:build", "--factory",
                    "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "warning"]
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=server_env(data_dir, port),
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
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


# -- HTTP sanity checks -------------------------------------------------------------------
def http(method: str, url: str, *, headers: dict[str, str] | None = None,
         body: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def sanity(server: Server, fx: Fixture) -> None:
    status, body = http("GET", server.url("/v1/userinfo"),
                        headers={"Authorization": f"Bearer {fx.access_token}"})
    assert status == 200 and body.get("sub") == fx.subject, (status, body)
    status, body = http("POST", server.url("/oauth/token"), body={
        "grant_type": "refresh_token", "refresh_token": fx.refresh_token,
        "client_id": fx.client_id, "client_secret": fx.client_secret})
    assert status == 200 and body.get("refresh_token"), (status, body)
    # The rotated access token works; the one refresh token is spent.
    status, _ = http("GET", server.url("/v1/userinfo"),
                     headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200, status


# -- wrk ----------------------------------------------------------------------------------
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


# -- profiles -----------------------------------------------------------------------------
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
_IDLE_WORKER = ("Condition.wait (threading.py", "Queue.get (queue.py")


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
    collapsed stacks. py-spy's idle detection does not see anyio's parked worker threads
    (blocked in ``Queue.get``) as idle here, so those stacks are dropped explicitly."""
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
        if len(frames) >= 2 and frames[-1].startswith(_IDLE_WORKER[0]) \
                and frames[-2].startswith(_IDLE_WORKER[1]):
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


# -- report -------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal")).split()[1])
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    wrk_v = wrk_v.split(" Copyright")[0].removeprefix("wrk ")
    import sqlalchemy
    import uvicorn

    return {"CPUs (nproc)": str(os.cpu_count()), "CPU model": cpu,
            "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "Python": platform.python_version(), "kernel": platform.release(),
            "uvicorn": uvicorn.__version__, "SQLAlchemy": sqlalchemy.__version__,
            "SQLite": __import__("sqlite3").sqlite_version, "wrk": wrk_v.strip(),
            "code measured": f"sha256 of gateway/ + oauth_server/ sources: {source_digest()}",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def source_digest() -> str:
    """A short digest of the product sources, to tell which code a result belongs to."""
    import hashlib

    digest = hashlib.sha256()
    for package in ("gateway", "oauth_server"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".html", ".css", ".js", ".mako"}:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def render(args: argparse.Namespace, info: dict[str, str], server_cmd: list[str],
           userinfo: WrkRun, refresh: WrkRun, rss_peak_kb: int, idle_rss_kb: int,
           singles: list[WrkRun], profiles: list[Profile]) -> str:
    rss_mb = rss_peak_kb / 1024
    p99_u = userinfo.summary["p99_us"] / 1000
    p99_r = refresh.summary["p99_us"] / 1000
    rows = [
        ("refresh-token grants/s (200s only)", f"{refresh.rps:,.0f}", "≥ 1,500",
         verdict(refresh.rps >= TARGETS["refresh_rps"])),
        ("  refresh p50 latency", f"{refresh.summary['p50_us'] / 1000:.2f} ms", "", ""),
        ("  refresh p99 latency", f"{p99_r:.2f} ms", "< 25 ms",
         verdict(p99_r < TARGETS["p99_ms"])),
        ("GET /v1/userinfo/s", f"{userinfo.rps:,.0f}", "≥ 5,000",
         verdict(userinfo.rps >= TARGETS["userinfo_rps"])),
        ("  userinfo p50 latency", f"{userinfo.summary['p50_us'] / 1000:.2f} ms", "", ""),
        ("  userinfo p99 latency", f"{p99_u:.2f} ms", "< 25 ms",
         verdict(p99_u < TARGETS["p99_ms"])),
        ("server peak RSS (VmHWM)", f"{rss_mb:.0f} MB", "< 200 MB",
         verdict(rss_mb < TARGETS["rss_mb"])),
    ]
    out = ["# Calgate OAuth benchmark results", "",
           "Generated by `bench/run_oauth_bench.py`; see `bench/README.md`. Where the time goes "
           "and why refresh misses its target: `bench/HOTSPOTS.md`.", "",
           "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += ["", "## Results vs targets", "",
            f"One uvicorn worker, SQLite (WAL), local secret store; wrk in a second process, "
            f"{args.connections} connections, {args.threads} wrk thread; "
            f"{args.warmup} s warm-up before each measured run.", "",
            "| metric | measured | target | verdict |", "|---|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    out += ["", "## Details", "",
            "| run | seconds | requests | good | non-2xx | socket errors | p50 | p90 | p99 "
            "| max | server CPU | CPU ms/request | max RSS during run | other load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in (userinfo, refresh, *singles):
        s = r.summary
        sock = s["connect_errors"] + s["read_errors"] + s["write_errors"] + s["timeouts"]
        bad = s.get("not_ok", s["non_2xx"])
        out.append(
            f"| {r.name} | {r.seconds:.1f} | {s['requests']:,} | {r.good:,} | {bad:,} | {sock} "
            f"| {s['p50_us'] / 1000:.2f} ms | {s['p90_us'] / 1000:.2f} ms "
            f"| {s['p99_us'] / 1000:.2f} ms | {s['max_us'] / 1000:.1f} ms "
            f"| {100 * r.cpu_seconds / r.seconds:.0f}% | {r.cpu_ms_per_request:.3f} "
            f"| {r.rss_max_kb / 1024:.0f} MB | {r.other_cores:.2f} cores |")
    extra = refresh.summary
    out += ["", f"Refresh tokens: {extra['tokens_used']:,} of {args.refresh_tokens:,} "
            f"pre-minted used, {extra['exhausted']} requests after exhaustion."]
    if extra.get("first_not_ok"):
        out.append(f"First non-200 refresh response: `{extra['first_not_ok']}`")
    out += [f"Server RSS after start-up (idle, before load): {idle_rss_kb / 1024:.0f} MB.",
            "Server CPU is user+system time of the server process (all its threads) over the "
            "run; 100% is one core. *Other load* is CPU used meanwhile by processes other "
            "than the server, wrk and this script (2 cores in all).", ""]
    noisy = max(userinfo.other_cores, refresh.other_cores)
    if noisy > 0.25:
        out += [f"**Warning: other processes used up to {noisy:.2f} cores during a measured "
                "run; the numbers above understate this machine. Re-run when it is idle.**",
                ""]
    out += [
            "## Reproduce", "", "```", ".venv/bin/python bench/run_oauth_bench.py"
            + (" --profile" if profiles else ""), "```", "",
            "Which runs (port, tokens and secrets vary per run):", "", "```",
            " ".join(_redact(server_cmd)), "# env: CALGATE_DATA_DIR=<tmp> CALGATE_PORT=<port> "
            "CALGATE_PUBLIC_URL=http://127.0.0.1:<port>",
            " ".join(_redact(userinfo.command)), " ".join(_redact(refresh.command)), "```", "",
            "### wrk output", "", "```", userinfo.stdout.strip(), "", refresh.stdout.strip(),
            "```"]
    if profiles:
        out += ["", "## Profiles (py-spy 250 Hz, same load, separate runs)", "",
                "Taken in extra runs after the measured ones, so sampling overhead does not "
                "affect the numbers above. `--gil` shows where the GIL-holding CPU goes "
                "(the throughput ceiling of one worker); `threads` shows where all request "
                "threads spend wall time.", ""]
        for p in profiles:
            out += [profile_markdown(p), ""]
    return "\n".join(out).rstrip() + "\n"


def _redact(cmd: list[str]) -> list[str]:
    out = []
    for part in cmd:
        if part.startswith("Authorization: Bearer"):
            part = "'Authorization: Bearer <ACCESS_TOKEN>'"
        out.append(part)
    if "--" in out:
        i = out.index("--")
        out[i + 1:i + 4] = ["<TOKENS_FILE>", "<CLIENT_ID>", "<CLIENT_SECRET>"]
    return [str(Path(x).relative_to(ROOT)) if x.startswith(str(ROOT)) else x for x in out]


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each run")
    parser.add_argument("--userinfo-seconds", type=int, default=15)
    parser.add_argument("--refresh-seconds", type=int, default=12)
    parser.add_argument("--refresh-tokens", type=int, default=60_000,
                        help="refresh tokens pre-minted for the measured refresh run")
    parser.add_argument("--single-seconds", type=int, default=5,
                        help="also run each endpoint on 1 connection for reference (0: skip)")
    parser.add_argument("--profile", action="store_true",
                        help="after measuring, py-spy each endpoint for --profile-seconds")
    parser.add_argument("--profile-seconds", type=int, default=10)
    parser.add_argument("--profile-dir", type=Path, default=None,
                        help="keep py-spy's raw collapsed stacks here (default: discard)")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait for other processes to go quiet first")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print, don't write results")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.profile and not PY_SPY.exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2

    started = time.monotonic()
    conns, threads = args.connections, args.threads
    batches = {"warmup": 5_000 * args.warmup, "main": args.refresh_tokens,
               "single": 2_000 * args.single_seconds}
    if args.profile:
        for mode in ("gil", "threads"):
            batches[f"profile-{mode}"] = 2_000 * (args.profile_seconds + 2)
    with tempfile.TemporaryDirectory(prefix="calgate-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        t0 = time.monotonic()
        fx = prepare(data_dir, port, batches)
        print(f"setup: migrated, {sum(batches.values()):,} token families minted in "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        load = wait_quiet(args.quiet_wait)
        print(f"other processes' load before the runs: {load:.2f} cores", flush=True)
        server = Server(data_dir, port)
        profiles: list[Profile] = []
        singles: list[WrkRun] = []
        try:
            server.wait_ready()
            sanity(server, fx)
            idle_rss = server.rss_kb()
            print(f"server pid {server.pid} on port {port}, idle RSS {idle_rss / 1024:.0f} MB",
                  flush=True)

            run_wrk("warm-up", wrk_userinfo(server, fx, args.warmup, conns, threads), server)
            userinfo = run_wrk("GET /v1/userinfo",
                               wrk_userinfo(server, fx, args.userinfo_seconds, conns, threads),
                               server)
            print(f"userinfo: {userinfo.rps:,.0f}/s p50 {userinfo.summary['p50_us']} us "
                  f"p99 {userinfo.summary['p99_us']} us", flush=True)

            run_wrk("warm-up", wrk_refresh(server, fx, "warmup", args.warmup, conns, threads),
                    server)
            refresh = run_wrk("POST /oauth/token (refresh)",
                              wrk_refresh(server, fx, "main", args.refresh_seconds, conns,
                                          threads), server)
            print(f"refresh: {refresh.rps:,.0f}/s p50 {refresh.summary['p50_us']} us "
                  f"p99 {refresh.summary['p99_us']} us (not ok: "
                  f"{refresh.summary['not_ok']})", flush=True)
            rss_peak = server.hwm_kb()

            # Reference: one connection, i.e. no concurrency inside the server.
            if args.single_seconds:
                secs = args.single_seconds
                singles.append(run_wrk("GET /v1/userinfo, 1 connection",
                                       wrk_userinfo(server, fx, secs, 1, 1), server))
                singles.append(run_wrk("POST /oauth/token (refresh), 1 connection",
                                       wrk_refresh(server, fx, "single", secs, 1, 1), server))
                print("single-connection runs: " + ", ".join(
                    f"{r.rps:,.0f}/s" for r in singles), flush=True)

            if args.profile:
                out_dir = args.profile_dir or Path(tmp)
                out_dir.mkdir(parents=True, exist_ok=True)
                secs = args.profile_seconds
                for mode in ("gil", "threads"):
                    for name, cmd in (
                        ("GET /v1/userinfo",
                         wrk_userinfo(server, fx, secs + 1, conns, threads)),
                        ("POST /oauth/token (refresh)",
                         wrk_refresh(server, fx, f"profile-{mode}", secs + 1, conns, threads)),
                    ):
                        short = "userinfo" if "userinfo" in name else "refresh"
                        raw = out_dir / f"{short}-{mode}.txt"
                        run_wrk(name, cmd, server, profile=(raw, secs, mode == "gil"))
                        profiles.append(analyse(name, mode, raw))
                        print(f"profiled {name} ({mode}): {raw}", flush=True)
        finally:
            server.stop()

    report = render(args, machine(), server.cmd, userinfo, refresh, rss_peak, idle_rss,
                    singles, profiles)
    print()
    print(report)
    if not args.no_write:
        args.results.write_text(report)
        print(f"wrote {args.results} ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
