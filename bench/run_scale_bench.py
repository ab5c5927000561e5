"""Benchmark (issue 6): how many linked CalDAV profiles 2 API and 2 worker processes on
this machine keep within a 5-minute sync freshness, and the API's read throughput
meanwhile.

Run from the repository root (about 6 minutes with the default 3,000 accounts; PostgreSQL
on CALGATE_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres;
wrk installed):

    .venv/bin/python bench/run_scale_bench.py              # writes bench/RESULTS-scale.md
    .venv/bin/python bench/run_scale_bench.py --no-write   # prints the report only
    .venv/bin/python bench/run_scale_bench.py --accounts 200 --no-write   # a quick try

What it does:

1. **Upstream**: Radicale with N synthetic users (``--accounts``), one calendar of
   ``--events`` events each, the files written into its storage (tmpfs) before it starts
   (bench/scale_fixtures.py, through bench/events_fixtures.py's ``BenchRadicale``).
2. **Deployment** (bench/scale_deploy.py): a fresh PostgreSQL database, ``calgate serve``
   with ``CALGATE_API_WORKERS=2`` and ``CALGATE_WORKER_MODE=external``, two ``calgate
   worker`` processes, the local secret store in a data dir they share,
   ``CALGATE_OUTBOUND_ALLOW_NETWORKS=127.0.0.0/8``, ``CALGATE_SYNC_INTERVAL=300``,
   ``CALGATE_LOG_LEVEL=warning``. The N accounts are linked in this process before the
   workers start (park + link, as the consent step does).
3. **Initial syncs**: timed from the workers' start until every profile has synced once.
4. **Reads with no syncs**: every profile's next poll is put an hour ahead; wrk drives
   ``GET /v1/events`` (tzid, 7-day window, one calendar; a token for the first account)
   with 32 connections for 15 s after a 3 s warm-up.
5. **Sync round A** (the steady-state throughput): ``--changes`` owners each rename one
   event straight in Radicale, then every profile is made due at once
   (``next_sync_at = now``); the round ends when each has finished one incremental sync
   (bench/scale_rounds.py reads the start and end of each from the rows the workers
   write). CPU per process group (each worker, the API, Radicale, PostgreSQL) comes from
   /proc (bench/scale_procs.py); Radicale's log gives the upstream requests.
6. **Sync round B, with reads**: the same after new owner changes, with the wrk run of
   step 4 started 1 s into the round.
7. **Report** (bench/scale_report.py, projection in bench/scale_projection.py) to stdout
   and bench/RESULTS-scale.md, and bench/RESULTS.md's "Scale (issue 6)" section.
   Every process started here (Radicale, the API, the workers, wrk) is stopped by its
   PID; the database is dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_common as common  # noqa: E402
import scale_fixtures as sf  # noqa: E402
import scale_reads as reads  # noqa: E402
import scale_rounds as rounds  # noqa: E402
from scale_deploy import ScaleDeployment  # noqa: E402
from scale_procs import Groups, Window  # noqa: E402

QUIET_PATTERN = "pytest|run_.*bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def others_running() -> list[str]:
    """Test suites and other benchmarks running right now: not this process, its parents
    or the processes it started (Radicale's command line has ``runpy.run_module`` and a
    ``calgate-bench-`` folder in it)."""
    from scale_procs import descendants, snapshot

    found = subprocess.run(["pgrep", "-af", QUIET_PATTERN], capture_output=True, text=True)
    mine = descendants([os.getpid()], snapshot()) | {os.getppid()}
    return [x for x in found.stdout.splitlines() if int(x.split()[0]) not in mine
            and "run_scale_bench" not in x]


def wait_quiet(limit: float, calm: float = 30.0) -> dict[str, Any]:
    """Wait (at most ``limit`` s) until no test suite or benchmark has run for ``calm`` s."""
    began = time.monotonic()
    quiet_since = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - quiet_since < calm:
        busy = others_running()
        if busy:
            seen = busy
            quiet_since = time.monotonic()
            if time.monotonic() - began > limit:
                return {"quiet": False, "waited_s": time.monotonic() - began, "busy": seen}
        time.sleep(2)
    return {"quiet": True, "waited_s": time.monotonic() - began, "busy": seen}


class Watch:
    """Looks for test suites and other benchmarks every ``every`` s while the run lasts."""

    def __init__(self, every: float = 5.0) -> None:
        import threading

        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            for line in others_running():
                if line not in self.seen:
                    self.seen.append(line)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.seen


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=3000, help="Radicale accounts (profiles)")
    p.add_argument("--events", type=int, default=20, help="events per calendar")
    p.add_argument("--radicale-connections", type=int, default=128,
                   help="Radicale's --server-max-connections (its default: 8)")
    p.add_argument("--changes", type=int, default=300, help="owner changes before a round")
    p.add_argument("--api-workers", type=int, default=2, help="CALGATE_API_WORKERS")
    p.add_argument("--workers", type=int, default=2, help="`calgate worker` processes")
    p.add_argument("--interval", type=int, default=300, help="CALGATE_SYNC_INTERVAL")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--seconds", type=int, default=15, help="each measured wrk run")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="wait up to this long for test suites and benchmarks to stop")
    p.add_argument("--no-write", action="store_true", help="print, do not write")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--keep", action="store_true", help="keep the work dir (process logs)")
    return p.parse_args(argv)


def get(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body: dict[str, Any] = json.loads(answer.read())
        return body


def reader(d: ScaleDeployment, client_id: str, linked: Any, day0: Any) -> dict[str, Any]:
    """The read the API is loaded with: the first account's calendar, 7 days from today."""
    from sqlalchemy import select

    from gateway.persistence.tables import calendars

    with d.gateway.engine.connect() as conn:
        calendar_id = conn.execute(select(calendars.c.id).where(
            calendars.c.profile_id == linked.profile_id)).scalar_one()
    token = d.token(client_id, linked.subject)
    url = d.url + sf.events_path(calendar_id, day0)
    body = get(url, token)
    return {"url": url, "token": token, "events_in_window": len(body.get("events", [])),
            "bytes": len(json.dumps(body))}


def timed_round(d: ScaleDeployment, groups: Groups, name: str, args: argparse.Namespace,
                radicale: Any, wrk: list[str] | None = None) -> dict[str, Any]:
    """Make every profile due; wait until each synced once (with wrk 1 s in, if given)."""
    offset, counts = radicale.log.offset(), d.syncs_run()
    connections = rounds.Connections(d.gateway.engine)
    sessions = connections.sessions()
    window = Window(groups).start()
    t0 = rounds.make_all_due(d.gateway.engine)
    background, reads_at = None, 0.0
    if wrk is not None:
        time.sleep(1.0)
        reads_at = time.time() - t0
        background = reads.Background(f"{name}: reads during syncs", wrk, groups)
    done = rounds.wait_round(d.gateway.engine, name, args.accounts, t0, args.interval,
                             timeout=600, log=log, alive=d.alive, watch=connections)
    window.stop()
    time.sleep(0.6)  # sessions closed at the end report their statistics (~500 ms)
    out = done.as_dict() | {"window": window.as_dict(), "db_connections": connections.peak,
                            "db_sessions": connections.sessions() - sessions}
    out["upstream_requests"] = len(radicale.log.requests_since(offset))
    out["syncs_per_worker"] = [b - a for a, b in zip(counts, d.syncs_run(), strict=True)]
    if background is not None:
        run = background.join()
        out["reads"] = run.as_dict()
        # The syncs that ended while wrk ran: the sync rate under the read load.
        during = [e for e in done.ends if reads_at <= e <= reads_at + run.seconds]
        out |= {"reads_started_s": reads_at, "synced_during_reads": len(during),
                "rate_during_reads": len(during) / run.seconds}
    log(f"{name}: {done.done} profiles in {done.seconds:.1f} s ({done.rate:.1f}/s, steady "
        f"{done.steady_rate:.1f}/s), {done.failures} failed, {done.unfinished} unfinished")
    return out


def initial(d: ScaleDeployment, args: argparse.Namespace, radicale: Any) -> tuple[
        dict[str, Any], Groups]:
    """Start the workers; time the initial sync of every profile."""
    assert d.api is not None
    offset = radicale.log.offset()
    t0 = time.time()
    d.start_workers()
    groups = Groups(roots={"API": [d.api.pid], "Radicale": [radicale.pid]},
                    names={"PostgreSQL": "postgres"})
    for n, proc in enumerate(d.workers):
        groups.roots[f"worker {n + 1}"] = [proc.pid]
    window = Window(groups).start()
    connections = rounds.Connections(d.gateway.engine)
    sessions = connections.sessions()
    done = rounds.wait_round(d.gateway.engine, "initial syncs", args.accounts, t0,
                             args.interval, timeout=900, log=log, alive=d.alive,
                             watch=connections)
    window.stop()
    log(f"initial syncs: {done.done} in {done.seconds:.1f} s ({done.rate:.1f}/s), "
        f"{done.failures} failed")
    out = done.as_dict() | {"window": window.as_dict(),
                            "upstream_requests": len(radicale.log.requests_since(offset)),
                            "syncs_per_worker": d.syncs_run(),
                            "db_connections": connections.peak,
                            "db_sessions": connections.sessions() - sessions}
    return out, groups


def run_all(d: ScaleDeployment, radicale: Any, args: argparse.Namespace, day0: Any,
            out: dict[str, Any]) -> None:
    app = d.register_client()
    began = time.monotonic()
    linked = sf.link_all(d, app.client_id, radicale.url, args.accounts, log)
    out["link_s"] = time.monotonic() - began
    log(f"linked {args.accounts} profiles in {out['link_s']:.1f} s")
    d.start_api()
    d.wait_api_workers()
    out["initial"], groups = initial(d, args, radicale)
    read = reader(d, app.client_id, linked[0], day0)
    out["read"] = {k: v for k, v in read.items() if k != "token"}
    wrk = reads.wrk_command(read["url"], read["token"], args.seconds, args.connections)

    rounds.postpone_all(d.gateway.engine, 3600)
    time.sleep(3)  # syncs still running (none should be) finish; workers go idle
    reads.run("warm-up", reads.wrk_command(read["url"], read["token"], 3,
                                           args.connections), groups)
    idle = reads.run("reads, no syncs", wrk, groups)
    out["reads_idle"] = idle.as_dict()
    log(f"reads with no syncs: {idle.rps:.0f}/s, p99 {idle.summary['p99_us'] / 1000:.1f} ms")

    for name, seed, load in (("round A", 1, None), ("round B", 2, wrk)):
        changed = sf.owner_changes(radicale.base, args.accounts, args.events, args.changes,
                                   day0, seed)
        result = timed_round(d, groups, name, args, radicale, load)
        result["owner_changes"] = len(changed)
        out["round_a" if load is None else "round_b"] = result
        time.sleep(2)
    out["postgres"] = d.server_version()
    out["alive"] = d.alive()


def machine(postgres: str) -> dict[str, str]:
    import datetime as dt
    from importlib.metadata import version

    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {**common.cpu_and_memory(), "PostgreSQL": postgres,
            "Radicale": version("radicale"), "uvicorn": version("uvicorn"),
            "wrk": wrk_v.split(" Copyright")[0].removeprefix("wrk ").strip(),
            "code measured": "sha256 of gateway/ + oauth_server/ + providers/ sources: "
                             + common.code_digest(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"options": {k: v for k, v in vars(args).items()
                                       if k not in {"no_write", "json", "keep"}}}
    out["quiet"] = wait_quiet(args.quiet_wait) if args.quiet_wait else {
        "quiet": not others_running(), "waited_s": 0.0, "busy": others_running()}
    began = time.monotonic()
    watch = Watch()
    work = Path(tempfile.mkdtemp(prefix="calgate-scale-bench-"))
    day0 = sf.today()
    radicale = sf.start_radicale(args.accounts, args.events, day0, args.radicale_connections)
    log(f"Radicale: {args.accounts} accounts of {args.events} events, started in "
        f"{radicale.start_seconds:.1f} s")
    try:
        with ScaleDeployment(work, args.api_workers, args.workers, args.interval) as d:
            run_all(d, radicale, args, day0, out)
    finally:
        radicale.stop()
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["seconds"] = time.monotonic() - began
    out["machine"] = machine(out["postgres"])
    out["others_during"] = watch.stop()
    out["argv"] = common.reproducible(sys.argv[1:])
    return out


def main(argv: list[str] | None = None) -> int:
    import scale_report

    args = parse(argv)
    result = measure(args)
    common.publish(result, scale_report.render(result), "scale", args.json,
                   not args.no_write)
    log(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
