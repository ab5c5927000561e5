"""Builds bench/RESULTS.md: every benchmark's "Results vs targets" table in one place.

Each runner writes its full report (bench/RESULTS-oauth.md, RESULTS-events.md,
RESULTS-google.md, RESULTS-latency.md, RESULTS-scale.md, RESULTS-microsoft.md,
RESULTS-availability.md, RESULTS-exchange.md) and then
calls :func:`write_index`, which copies each report's machine line and its "Results vs
targets" section here. Run it alone after editing by hand:

    .venv/bin/python bench/results_index.py
"""

from __future__ import annotations

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPORTS = (
    ("OAuth hot paths (issue 2)", "RESULTS-oauth.md", "bench/run_oauth_bench.py"),
    ("Events reads and CalDAV sync (issue 3)", "RESULTS-events.md",
     "bench/run_events_bench.py"),
    ("Google sync (issue 4)", "RESULTS-google.md", "bench/run_google_bench.py"),
    ("Notification latency (issue 5)", "RESULTS-latency.md", "bench/run_latency_bench.py"),
    ("Scale (issue 6)", "RESULTS-scale.md", "bench/run_scale_bench.py"),
    ("Microsoft sync (issue 12)", "RESULTS-microsoft.md", "bench/run_microsoft_bench.py"),
    ("Availability (issue 15)", "RESULTS-availability.md", "bench/run_availability_bench.py"),
    ("Exchange sync (issue 14)", "RESULTS-exchange.md", "bench/run_exchange_bench.py"),
)


def _section(text: str, heading: str) -> str:
    """The body of ``## heading`` up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1).strip() if match else ""


def _machine(text: str) -> str:
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", _section(text, "Machine"), re.M))
    keep = [f"{k}: {v}" for k, v in rows.items()
            if k in {"CPUs (nproc)", "CPU model", "date", "code measured", "load"}]
    return "; ".join(keep)


def render() -> str:
    out = ["# Calgate benchmark results", "",
           "Every benchmark's results against its targets; the full reports (method, "
           "details, profiles, how to reproduce) are in the files linked below. Generated "
           "by `bench/results_index.py`, which each runner calls when it writes its report.",
           ""]
    for title, name, runner in REPORTS:
        path = BENCH / name
        out += [f"## {title}", ""]
        if not path.exists():
            out += [f"Not measured yet: `{runner}` writes [{name}]({name}).", ""]
            continue
        text = path.read_text()
        out += [f"Full report: [{name}]({name}), by `{runner}`. Machine: {_machine(text)}.",
                "", _section(text, "Results vs targets"), ""]
    return "\n".join(out).rstrip() + "\n"


def write_index() -> Path:
    path = BENCH / "RESULTS.md"
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write_index())
