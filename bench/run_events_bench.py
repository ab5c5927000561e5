"""Benchmark: GET /v1/events from a 10,000-event mirror, the same window straight from
Radicale, and incremental and initial sync of a 5,000-event calendar.

Run from the repository root:

    .venv/bin/python bench/run_events_bench.py              # measure, write bench/RESULTS-events.md
    .venv/bin/python bench/run_events_bench.py --profile always   # py-spy even what passes

What it does (see bench/README.md):

1. **Upstream.** Radicale (tests.support's ``RadicaleServer``, storage on tmpfs, log at
   info level) gets two users' calendars written straight into its storage before it
   starts: ``big`` with 10,000 events, ``mid`` with 5,000 (bench/events_fixtures.py).
   One sync-collection REPORT per calendar makes Radicale build its caches first.
2. **Calgate, in-process.** A fresh data dir (SQLite, local secret store) is migrated; a
   client is registered and three accounts are linked through ``park_credentials`` +
   ``link``: ``big`` (synced here, through the real ``SyncEngine.sync_profile``, to fill
   the mirror with 10,000 events) and ``mid`` twice (one per sync child below). A bearer
   token for ``big`` is minted with the real ``save_code`` + ``redeem_code``.
3. **Sync, in child processes** (bench/events_sync.py): the initial sync of ``mid``
   (wall, CPU, peak RSS), then incremental syncs after one event changed upstream (CPU via
   ``time.process_time``; requests counted in Radicale's log by Calgate's User-Agent).
   A second child repeats the initial sync of ``mid`` under tracemalloc.
4. **API.** One uvicorn worker (``CALGATE_WORKER_MODE=external``: no background sync)
   serves ``GET /v1/events?tzid=Etc/UTC&from=…&to=…&calendar_ids[]=…`` for a 7-day
   window holding ~300 events (page 1 of 3, 100 events); wrk in a second process drives
   32 connections after a warm-up, then 1 connection for reference.
5. **Radicale vs Calgate.** The same window read N times in a row from Radicale with
   caldav (``search(..., expand=True)`` and ``date_search``) and from Calgate (page 1 and
   every ``next_page``, one keep-alive connection).
6. **Report** to stdout and bench/RESULTS-events.md. Every process started here (Radicale,
   uvicorn, the sync children, wrk, py-spy) is stopped by its PID.

Traffic stays on 127.0.0.1. The whole run takes about 3½ minutes on 2 cores (under 4).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_common as common  # noqa: E402
import events_compare as cmp  # noqa: E402
import events_costs as costs  # noqa: E402
import events_fixtures as fx  # noqa: E402
import events_load as ld  # noqa: E402
import events_report as report  # noqa: E402

TARGETS = {"rps": 800.0, "p99_ms": 50.0, "speedup": 10.0, "sync_requests": 3,
           "sync_cpu_ms": 100.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def events_path(calendar_id: str, day0: Any, start_day: int, days: int) -> str:
    query = urlencode({"tzid": "Etc/UTC",
                       "from": (day0 + timedelta(days=start_day)).date().isoformat(),
                       "to": (day0 + timedelta(days=start_day + days)).date().isoformat(),
                       "calendar_ids[]": calendar_id})
    return f"/v1/events?{query}"


def settle(server: ld.Server, limit: float = 5.0) -> None:
    """Wait until the server has worked off the requests a finished wrk run left queued
    (it uses < 10% of a core for 200 ms), so they do not count against the next run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cpu0 = server.cpu_seconds()
        time.sleep(0.2)
        if server.cpu_seconds() - cpu0 < 0.02:
            return


def get_json(url: str, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def run_child(job: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    """bench/events_sync.py in a process of its own; stopped by its PID on timeout."""
    return common.run_child("events_sync.py", job, timeout)


def code_digest() -> str:
    return common.code_digest()


def machine_info() -> dict[str, str]:
    import caldav
    import radicale

    return ld.machine({"caldav": caldav.__version__, "Radicale": radicale.VERSION,
                       "code measured": "sha256 of gateway/ + oauth_server/ + providers/ "
                                        f"sources: {code_digest()}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the read mirror")
    parser.add_argument("--sync-events", type=int, default=5_000,
                        help="events in the synced calendar")
    parser.add_argument("--rounds", type=int, default=7, help="measured incremental syncs")
    parser.add_argument("--window-start", type=int, default=7, help="days from today")
    parser.add_argument("--window-days", type=int, default=7)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of the measured run")
    parser.add_argument("--single-seconds", type=int, default=5,
                        help="also run on 1 connection for reference (0: skip)")
    parser.add_argument("--compare-requests", type=int, default=6,
                        help="sequential reads of the window per way (Radicale and Calgate)")
    parser.add_argument("--tracemalloc", action=argparse.BooleanOptionalAction, default=True,
                        help="repeat the initial sync under tracemalloc (+~30 s)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="py-spy the API / the incremental sync: when a target is "
                             "missed (auto), always or never")
    parser.add_argument("--profile-seconds", type=int, default=6)
    parser.add_argument("--profile-rounds", type=int, default=6)
    parser.add_argument("--profile-dir", type=Path, default=None,
                        help="keep py-spy's raw stacks here (default: discarded)")
    parser.add_argument("--quiet-wait", type=float, default=20.0,
                        help="seconds to wait for other processes to go quiet before wrk")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS-events.md")
    parser.add_argument("--no-write", action="store_true", help="print, don't write results")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.profile != "never" and not ld.PY_SPY.exists():
        print("py-spy is not installed (.venv/bin/pip install py-spy); or --profile never",
              file=sys.stderr)
        return 2

    started = time.monotonic()
    data: dict[str, Any] = {"args": vars(args) | {"results": str(args.results)},
                            "targets": TARGETS, "phases": {}}
    day0 = fx.today()
    with tempfile.TemporaryDirectory(prefix="calgate-events-bench-") as tmp:
        tmpdir = Path(tmp)
        data_dir = tmpdir / "data"
        port = ld.free_port()
        env = fx.settings_env(data_dir, port)
        lua = ld.SUMMARY_LUA

        radicale = fx.BenchRadicale({
            "big/" + fx.CALENDAR: fx.calendar_items("big", args.events, day0),
            "mid/" + fx.CALENDAR: fx.calendar_items("mid", args.sync_events, day0)})
        radicale.start()
        server: ld.Server | None = None
        try:
            log(f"Radicale pid {radicale.pid} on {radicale.url}, storage {radicale.dir}")
            secs, listed = fx.warm(radicale.base, "big/" + fx.CALENDAR)
            data["phases"]["radicale_warm_big_s"] = secs
            log(f"Radicale cached big/calendar ({listed:,} members) in {secs:.1f} s")
            # Radicale caches mid/ while Calgate syncs big/ (two processes, two cores).
            warm_mid: dict[str, Any] = {}
            warmer = threading.Thread(target=lambda: warm_mid.update(zip(
                ("s", "n"), fx.warm(radicale.base, "mid/" + fx.CALENDAR), strict=True)))
            warmer.start()

            gateway = fx.open_gateway(env, migrate_first=True)
            try:
                client_id = fx.register_client(gateway)
                big = fx.link_radicale(gateway, client_id, radicale.url, "big")
                mids = [fx.link_radicale(gateway, client_id, radicale.url, "mid")
                        for _ in range(2)]
                token = fx.access_token(gateway, client_id, big.subject)
                offset = radicale.log.offset()
                w0, c0 = time.perf_counter(), time.process_time()
                outcome = fx.sync(gateway, big.profile_id)
                data["fill"] = {"wall_s": time.perf_counter() - w0,
                                "cpu_s": time.process_time() - c0, "changed": outcome.changed,
                                "requests": len(radicale.log.requests_since(offset)),
                                "radicale_concurrent_warm": True}
                mirror = fx.mirror_counts(gateway, big.profile_id)
                warmer.join()  # Radicale idle again: the costs below run on a quiet machine
                data["costs_load"] = ld.wait_quiet(min(10.0, args.quiet_wait))
                data["costs"] = costs.costs(gateway, big.subject, mirror["calendar_ids"][0],
                                            day0, args.window_start, args.window_days)
            finally:
                gateway.close()
            data["phases"]["radicale_warm_mid_s"] = warm_mid.get("s")
            data["fill"] |= {"mirror_events": mirror["events"]}
            calendar_id = mirror["calendar_ids"][0]
            log(f"mirror of big: {mirror['events']:,} events in {data['fill']['wall_s']:.1f} s "
                f"({data['fill']['requests']} requests); Radicale cached mid/calendar in "
                f"{warm_mid.get('s', 0):.1f} s meanwhile")

            job = {"env": env, "radicale_log": str(radicale.log.path),
                   "radicale_base": radicale.base, "calendar": "mid/" + fx.CALENDAR,
                   "prefix": "mid", "day0": day0.isoformat(), "py_spy": str(ld.PY_SPY),
                   "cpu_target_s": TARGETS["sync_cpu_ms"] / 1000,
                   "requests_target": TARGETS["sync_requests"]}
            data["sync"] = run_child(job | {
                "profile_id": mids[0].profile_id, "subject": mids[0].subject,
                "rounds": args.rounds, "profile": args.profile,
                "profile_rounds": args.profile_rounds,
                "profile_raw": str((args.profile_dir or tmpdir) / "sync-incremental.txt")})
            first = data["sync"]["initial"]
            log(f"initial sync of mid: {first['wall_s']:.1f} s, peak RSS "
                f"{first['hwm_kb'] / 1024:.0f} MB; incremental CPU "
                + ", ".join(f"{1000 * r['cpu_s']:.0f} ms/{r['requests']} req"
                            for r in data["sync"]["incremental"]))
            if "profile" in data["sync"] and "raw" in data["sync"]["profile"]:
                data["sync_profile"] = ld.summarise(
                    "incremental sync, py-spy all threads", Path(data["sync"]["profile"]["raw"]),
                    cmp.SYNC_AREAS, keep=("gateway/sync/", "providers/"))
            if args.tracemalloc:
                data["sync_traced"] = run_child(job | {
                    "profile_id": mids[1].profile_id, "subject": mids[1].subject,
                    "tracemalloc": True})
                log("tracemalloc peak of the initial sync: "
                    f"{data['sync_traced']['initial']['tracemalloc_peak_b'] / 2**20:.0f} MiB")

            # -- the API under load ---------------------------------------------------------
            path = events_path(calendar_id, day0, args.window_start, args.window_days)
            data["path"] = path
            server = ld.Server(data_dir, env)
            data["server_cmd"] = server.cmd
            server.wait_ready()
            status, body = get_json(server.url(path), token)
            assert status == 200 and len(body["events"]) == 100, (status, body.get("pages"))
            assert body["pages"]["total"] >= 2 and "next_page" in body["pages"], body["pages"]
            data["page"] = {"events": len(body["events"]), "pages": body["pages"]["total"],
                            "bytes": len(json.dumps(body))}
            data["idle_rss_kb"] = server.rss_kb()
            load = ld.wait_quiet(args.quiet_wait)
            log(f"uvicorn pid {server.pid}; first page {data['page']}; other load {load:.2f}")
            conns, threads, url = args.connections, args.threads, server.url(path)

            def wrk(seconds: int, c: int = conns, t: int = threads) -> list[str]:
                return ld.wrk_command(url, token, seconds, c, t, lua)

            ld.run_wrk("warm-up", wrk(args.warmup), server)
            settle(server)
            main_run = ld.run_wrk(f"GET /v1/events, {conns} connections", wrk(args.seconds),
                                  server)
            data["wrk"] = [main_run]
            log(f"events: {main_run.rps:,.0f}/s p50 {main_run.summary['p50_us'] / 1000:.1f} ms "
                f"p99 {main_run.summary['p99_us'] / 1000:.1f} ms")
            if args.single_seconds:
                settle(server)
                data["wrk"].append(ld.run_wrk("GET /v1/events, 1 connection",
                                              wrk(args.single_seconds, 1, 1), server))
                log(f"1 connection: {data['wrk'][-1].rps:,.0f}/s")
            data["rss_peak_kb"] = server.hwm_kb()

            settle(server)
            window, sizes = cmp.calgate_window(server.url(""), path, token,
                                               args.compare_requests)
            data["compare"] = [window]
            data["window_pages"] = sizes
            missed = (main_run.rps < TARGETS["rps"]
                      or main_run.summary["p99_us"] / 1000 >= TARGETS["p99_ms"])
            data["api_profiles"] = []
            if args.profile == "always" or (args.profile == "auto" and missed):
                out_dir = args.profile_dir or tmpdir
                out_dir.mkdir(parents=True, exist_ok=True)
                for mode in ("gil", "threads"):
                    settle(server)
                    raw = out_dir / f"events-{mode}.txt"
                    ld.run_wrk("profile", wrk(args.profile_seconds + 1), server,
                               profile=(raw, args.profile_seconds, mode == "gil"))
                    data["api_profiles"].append(ld.summarise(
                        f"GET /v1/events, py-spy {'--gil' if mode == 'gil' else 'all threads'}",
                        raw, ld.API_AREAS))
                    log(f"profiled GET /v1/events ({mode})")
            server.stop()
            server = None

            # -- the same load with the read cache off: every request renders its page -----
            server = ld.Server(data_dir, env | {"CALGATE_READ_CACHE_MB": "0"})
            server.wait_ready()
            url = server.url(path)
            ld.wait_quiet(args.quiet_wait)
            ld.run_wrk("warm-up", wrk(args.warmup), server)
            settle(server)
            cold = ld.run_wrk(f"GET /v1/events, {conns} connections, read cache off",
                              wrk(args.seconds), server)
            data["wrk"].append(cold)
            log(f"cache off: {cold.rps:,.0f}/s p99 {cold.summary['p99_us'] / 1000:.1f} ms")
            server.stop()
            server = None

            # -- the same window straight from Radicale -------------------------------------
            start = day0 + timedelta(days=args.window_start)
            data["compare"] += cmp.radicale_loops(
                radicale.url, "big", fx.PASSWORD, "big/" + fx.CALENDAR, start,
                start + timedelta(days=args.window_days), args.compare_requests)
            log("Radicale: " + ", ".join(f"{lp.p50_ms:.0f} ms ({lp.items} events)"
                                         for lp in data["compare"][1:]))
        finally:
            if server is not None:
                server.stop()
            radicale.stop()
        data["phases"]["total_s"] = time.monotonic() - started
    data["machine"] = machine_info()
    text = report.render(data)
    print()
    print(text)
    if not args.no_write:
        args.results.write_text(text)
        from results_index import write_index

        write_index()
        log(f"wrote {args.results} ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
