"""Benchmark: refresh-token grants/s and bearer GET /v1/userinfo/s on one uvicorn worker.

Run from the repository root:

    .venv/bin/python bench/run_oauth_bench.py            # measure, write bench/RESULTS-oauth.md
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
4. A Markdown report goes to stdout and to bench/RESULTS-oauth.md. The server is always stopped
   with SIGTERM on its PID.

Traffic stays on 127.0.0.1. The whole run takes about 1 minute (2 with --profile).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench_profiles import Profile, analyse  # noqa: E402
from bench_report import machine, render  # noqa: E402
from bench_server import Server, wait_quiet  # noqa: E402
from bench_setup import PY_SPY, free_port, prepare, sanity, server_env  # noqa: E402
from bench_wrk import WrkRun, run_wrk, wrk_refresh, wrk_userinfo  # noqa: E402


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
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS-oauth.md")
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
        server = Server(data_dir, server_env(data_dir, port))
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
        from results_index import write_index

        write_index()
        print(f"wrote {args.results} ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
