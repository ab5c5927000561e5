"""Benchmark (issue 5): the time from a change upstream to the client app's webhook, for a
CalDAV account polled every 30 s and for a Google account with a watch channel.

Run from the repository root (about 5 minutes; PostgreSQL on CALGATE_TEST_PG_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres):

    .venv/bin/python bench/run_latency_bench.py              # writes bench/RESULTS-latency.md
    .venv/bin/python bench/run_latency_bench.py --no-write   # prints the report only
    .venv/bin/python bench/run_latency_bench.py --only google --google-changes 10  # a try

What it does:

1. **A production-like deployment per half**: a fresh PostgreSQL database (dropped
   afterwards), one ``calgate serve`` process and one ``calgate worker`` process
   (``CALGATE_WORKER_MODE=external``, the default 2 s worker tick), the local secret store;
   the receiver is allowed as an operator would (``CALGATE_CALLBACK_HTTP_HOSTS=127.0.0.1``,
   ``CALGATE_OUTBOUND_ALLOW_NETWORKS=127.0.0.0/8``). The client app is registered and the
   accounts linked in this process (park + link, as the consent step does); the app is
   the unmodified pycronofy SDK, its receiver tests/support/receiver.py (both signatures
   checked) on loopback.
2. **CalDAV** (bench/latency_caldav.py): ``CALGATE_SYNC_INTERVAL=--poll`` (30 s). Ten
   Radicale users, one calendar of 300 events each, a channel each; their polls are spread
   over the period (as if linked at different moments). Five changes per account, each
   after a random pause uniform over the poll period (stratified over the 50 changes, so
   their phases cover the period evenly) and only once the previous one's notification
   arrived: 50 changes in about 3 minutes instead of 25.
3. **Google** (bench/latency_google.py): the Google emulator in this process,
   ``CALGATE_PROVIDER_PUSH=on`` and ``CALGATE_SYNC_INTERVAL=3600``, so only the push can
   explain a fast delivery; 50 changes in sequence through the emulator's API, each followed
   by its notification and a random 0.2-1 s pause; the emulator's push log must grow by one
   per change.
4. **Report** (bench/latency_report.py) to stdout and bench/RESULTS-latency.md, and
   bench/RESULTS.md's "Notification latency (issue 5)" section (bench/results_index.py).
   Every process started here (Radicale, API, worker) is stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_common as common  # noqa: E402
import latency_caldav as caldav  # noqa: E402
import latency_google as google  # noqa: E402
import latency_report as rep  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine_busy() -> float:
    """CPU seconds (all CPUs, every process) since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def other_benchmarks() -> list[str]:
    found = subprocess.run(["pgrep", "-af", "run_.*bench"], capture_output=True, text=True)
    mine = {str(os.getpid()), str(os.getppid())}
    return [x for x in found.stdout.splitlines() if x.split()[0] not in mine]


def timed(name: str, run: Any, *args: Any) -> dict[str, Any]:
    """One half, with the machine's CPU use (cores, all processes) while it ran."""
    busy0, wall0 = machine_busy(), time.monotonic()
    result: dict[str, Any] = run(*args)
    wall = time.monotonic() - wall0
    result["wall_s"] = wall
    result["machine_cores_busy"] = (machine_busy() - busy0) / wall
    log(f"{name}: {len(result['records'])} changes measured in {wall:.0f} s")
    return result


def machine(postgres: str) -> dict[str, str]:
    import datetime as dt
    from importlib.metadata import version

    return {**common.cpu_and_memory(), "PostgreSQL": postgres,
            "Radicale": version("radicale"), "pycronofy": version("pycronofy"),
            "code measured": "sha256 of gateway/ + oauth_server/ + providers/ sources: "
                             + common.code_digest(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--poll", type=float, default=30.0, help="CALGATE_SYNC_INTERVAL for CalDAV")
    p.add_argument("--accounts", type=int, default=10, help="Radicale accounts")
    p.add_argument("--changes", type=int, default=5, help="changes per Radicale account")
    p.add_argument("--events", type=int, default=300, help="events seeded per calendar")
    p.add_argument("--independent-pauses", action="store_true",
                   help="draw the CalDAV pauses independently (default: stratified)")
    p.add_argument("--google-changes", type=int, default=50)
    p.add_argument("--only", choices=("caldav", "google"), help="run one half")
    p.add_argument("--no-write", action="store_true", help="print, do not write")
    p.add_argument("--json", type=Path, help="also write the raw records here")
    p.add_argument("--keep", action="store_true", help="keep the work dir (process logs)")
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    busy = other_benchmarks()
    if busy:
        raise SystemExit(f"another benchmark is running: {busy}")
    work = Path(tempfile.mkdtemp(prefix="calgate-latency-bench-"))
    out: dict[str, Any] = {"caldav": None, "google": None}
    began = time.monotonic()
    try:
        if args.only in (None, "caldav"):
            out["caldav"] = timed("caldav", caldav.run, caldav.CaldavOptions(
                poll=args.poll, accounts=args.accounts, changes=args.changes,
                events=args.events, independent=args.independent_pauses), work, log)
        if args.only in (None, "google"):
            out["google"] = timed("google", google.run, google.GoogleOptions(
                changes=args.google_changes, events=args.events), work, log)
    finally:
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    out["seconds"] = time.monotonic() - began
    part = out["caldav"] or out["google"]
    out["machine"] = machine(part["postgres"])
    out["argv"] = common.reproducible(sys.argv[1:])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = measure(args)
    return common.finish(args, result, rep.render(result), "latency")


if __name__ == "__main__":
    raise SystemExit(main())
