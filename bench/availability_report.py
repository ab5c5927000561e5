"""The report of bench/run_availability_bench.py: the machine, the results against the
targets, the question and the data, every method's latency distribution and answer check,
how to reproduce."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import bench_common as common

TARGETS = {"p50_ms": 10.0, "p99_ms": 50.0, "vs_free_busy": 20.0, "vs_providers": 100.0}
LABELS = {
    "endpoint": "`POST /v1/availability` warm (the same question again)",
    "endpoint_cold": "`POST /v1/availability` cold (first question after a change)",
    "free_busy": "`GET /v1/free_busy` paged for every member + slots in the app",
    "radicale": "Radicale free-busy REPORT per member + slots in the app",
    "google": "Google emulator `freebusy.query` per member + slots in the app",
}


def other_benchmarks() -> list[str]:
    """Other benchmark runners on this machine (the report says so; they are not stopped)."""
    found = subprocess.run(["pgrep", "-af", "run_.*bench"], capture_output=True, text=True)
    mine = {str(os.getpid()), str(os.getppid())}
    return [x for x in found.stdout.splitlines() if x.split()[0] not in mine]


def machine(postgres: str) -> dict[str, str]:
    import datetime as dt
    from importlib.metadata import version

    return {**common.cpu_and_memory(), "PostgreSQL": postgres,
            "Radicale": version("radicale"), "httpx": version("httpx"),
            "google-api-python-client": version("google-api-python-client"),
            "code measured": "sha256 of gateway/ + oauth_server/ + providers/ sources: "
                             + common.code_digest(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _load(result: dict[str, Any]) -> str:
    before, after = result["load_before"], result["load_after"]
    return (f"load average (1 min) {before[0]:.2f} before, {after[0]:.2f} after; other "
            f"benchmark runners seen at start: {len(result['other_benchmarks'])}; the "
            "machine is shared with other engineers' work, so times are upper bounds")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms" if seconds < 0.1 else f"{seconds * 1000:,.0f} ms"


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def _ratio_rows(name: str, found: dict[str, Any], endpoints: dict[str, Any],
                target: float) -> list[str]:
    if not endpoints:
        return [f"|   p50 ratio to `POST /v1/availability` | not measured | ≥ {target:.0f}x |"
                " **not measured** |"]
    lines = []
    for kind, endpoint in endpoints.items():
        p50, p99 = found["p50"] / endpoint["p50"], found["p99"] / endpoint["p99"]
        lines += [f"|   p50 ratio: {name} ÷ `POST /v1/availability` {kind} | {p50:,.0f}x | "
                  f"≥ {target:.0f}x | {_verdict(p50 >= target)} |",
                  f"|   p99 ratio, {kind} | {p99:,.0f}x | | |"]
    return lines


def _endpoint_rows(key: str, endpoint: dict[str, Any]) -> list[str]:
    return [
        f"| {LABELS[key]}: p50 ({endpoint['rounds']} requests) | "
        f"{_ms(endpoint['p50'])} | ≤ {TARGETS['p50_ms']:.0f} ms | "
        f"{_verdict(endpoint['p50'] * 1000 <= TARGETS['p50_ms'])} |",
        f"|   p99 | {_ms(endpoint['p99'])} | ≤ {TARGETS['p99_ms']:.0f} ms | "
        f"{_verdict(endpoint['p99'] * 1000 <= TARGETS['p99_ms'])} |",
        f"|   API process CPU per request | {_ms(endpoint['api_cpu_s'])} | | |"]


def _results(result: dict[str, Any]) -> list[str]:
    q, methods = result["question"], result["methods"]
    endpoints = {kind: methods[key] for kind, key in (("warm", "endpoint"),
                                                      ("cold", "endpoint_cold"))
                 if "samples" in methods.get(key, {})}
    members, events = result["size"]["members"], result["size"]["events"]
    lines = [
        f"{members} members, each a Radicale account with {events} events over the 4 weeks "
        f"asked about ({members * events:,} in all), synced into Calgate's mirror (PostgreSQL "
        f"{result['postgres']}) by `calgate worker`, which is then stopped; `calgate "
        "serve` with one API worker answers. The question: "
        + "; ".join(f"a group of {len(g[0])} (required {g[1]})" for g in q["groups"])
        + f", {q['periods']} query periods (08:00-18:00 UTC on "
        f"each weekday of 4 weeks), {q['duration_min']}-minute slots every "
        f"{q['interval_min']} minutes, `response_format: \"slots\"`; "
        f"{result['methods']['reference_slots']} slots. Every method's answer is checked "
        "slot for slot against the slots of the calendars as generated. Clients in the "
        "runner's process, one request at a time, connections kept open.", "",
        "| metric | measured | target | verdict |", "|---|---:|---:|---|"]
    if not endpoints:
        lines.append(f"| {LABELS['endpoint']}: p50 | not measured: "
                     f"{methods['endpoint']['error'][:120]} | ≤ 10 ms | **not measured** |")
    for kind, key in (("warm", "endpoint"), ("cold", "endpoint_cold")):
        if kind in endpoints:
            lines += _endpoint_rows(key, endpoints[kind])
    for name, target, short in (("free_busy", TARGETS["vs_free_busy"], "free_busy"),
                                ("radicale", TARGETS["vs_providers"], "Radicale"),
                                ("google", TARGETS["vs_providers"], "Google")):
        found = methods[name]
        lines += [f"| {LABELS[name]}: p50 ({found['rounds']} answers, {found['requests']} "
                  f"requests each) | {_ms(found['p50'])} | | |",
                  f"|   p99 | {_ms(found['p99'])} | | |",
                  *_ratio_rows(short, found, endpoints, target)]
    checked = [n for n in LABELS if "compare" in methods.get(n, {})]
    equal = [n for n in checked if methods[n]["compare"]["equal"]]
    lines.append(f"| answers equal to the generated calendars' slots | {len(equal)} of "
                 f"{len(checked)} | all | {_verdict(len(equal) == len(checked))} |")
    return lines


def _details(result: dict[str, Any]) -> list[str]:
    methods, q = result["methods"], result["question"]
    lines = ["| method | rounds | requests each | min | p50 | p90 | p99 | max | slots | "
             "equal to the reference |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, label in LABELS.items():
        m = methods.get(name, {"error": "not run"})
        if "samples" not in m:
            lines.append(f"| {label} | not measured: {m['error'][:200]} | | | | | | | | |")
            continue
        c = m["compare"]
        check = "yes" if c["equal"] else (f"**no**: {c['got']} vs {c['expected']}; missing "
                                          f"{c['missing']}; extra {c['extra']}")
        lines.append(f"| {label} | {m['rounds']} | {m['requests']} | {_ms(m['min'])} | "
                     f"{_ms(m['p50'])} | {_ms(m['p90'])} | {_ms(m['p99'])} | "
                     f"{_ms(m['max'])} | {m['slots']} | {check} |")
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(q["kinds"].items()))
    lines += ["", f"Events in all calendars, by kind: {kinds} (bench/availability_fixtures.py"
              " says what each kind is; `busy`, `tentative`, `outside` and `allday_busy` "
              "count as busy). Live rows in the mirror per member: "
              f"{', '.join(map(str, q['mirrored']))}; the initial syncs took "
              f"{q['sync_s']:.1f} s. Groups: "
              + "; ".join(f"{', '.join(g[0])} (required {g[1]})" for g in q["groups"])
              + f". Query periods from {q['first']} to {q['last']}.", "",
              "p99 of fewer than 100 rounds is their maximum (nearest rank). The three "
              "client-side methods ask the members one after the other, as a simple app "
              "would; asking them concurrently would divide their wall time by up to the "
              "number of members, not their cost. The Google emulator runs in the runner's "
              "process (an in-memory store answering without any network: Google's own "
              "latency over the internet is not in these figures, so the real ratio would "
              "be larger; no latency is added to fake it). Warm: the same question asked "
              "again, the members' busy sets kept in the API process since the last change. "
              "Cold: before each request (untimed) every member's mirror generation is "
              "moved, as a sync or a write moves it, so every busy set is read afresh. "
              "`GET /v1/free_busy` is answered under the read cache's defaults too, so its "
              "pages, asked again each round, come from its own page cache: it is a warm "
              "baseline."]
    lines += ["", "Where the endpoint's time goes, what was changed and what is left: "
              "[HOTSPOTS-availability.md](HOTSPOTS-availability.md) (from "
              "`bench/availability_costs.py` and, with `--profile`, a py-spy profile)."]
    if "profile" in methods:
        lines += ["", "### Profile of `POST /v1/availability` (py-spy, API process)", "",
                  methods["profile"]]
    return [*lines, ""]


def render(result: dict[str, Any]) -> str:
    info = {**result["machine"], "load": _load(result)}
    lines = common.results_page("Calgate availability benchmark results",
                                "run_availability_bench.py", info, _results(result),
                                _details(result), result["argv"])
    return "\n".join([*lines, "The request (members by `sub`):", "", "```json",
                      _body(result["question"]["body"]), "```", ""])


def _body(body: dict[str, Any]) -> str:
    import json

    more = f"... {len(body['query_periods']) - 2} more"
    shown = {**body, "query_periods": [*body["query_periods"][:2], more]}
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}"
                              for k, v in shown.items()) + "\n}"
