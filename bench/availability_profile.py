"""``--profile`` of bench/run_availability_bench.py: py-spy on the API process while this
process sends more ``POST /v1/availability`` requests, summarised by bench/bench_profiles.py
(where the samples go, by area and by project function).

It runs after the measured rounds, so the sampling does not change the reported figures.
py-spy must be in the venv (``.venv/bin/pip install py-spy``) and allowed to ptrace the
server (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import ROOT
from bench_profiles import analyse, profile_markdown


def record(pid: int, request: Callable[[], Any], rounds: int, workdir: Path) -> str:
    """Markdown: the py-spy profile (``--gil``) of ``pid`` over ``rounds`` requests."""
    spy = ROOT / ".venv" / "bin" / "py-spy"
    if not spy.exists() and shutil.which("py-spy") is None:
        return "Not profiled: py-spy is not installed (`.venv/bin/pip install py-spy`)."
    raw = workdir / "availability.pyspy"
    proc = subprocess.Popen([str(spy if spy.exists() else "py-spy"), "record", "--pid",
                             str(pid), "--gil", "--rate", "250", "--format", "raw",
                             "--output", str(raw)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # py-spy attaches before the first request
        began = time.perf_counter()
        for _ in range(rounds):
            request()
        took = time.perf_counter() - began
    finally:
        proc.send_signal(2)  # SIGINT to its own PID: py-spy writes what it sampled
        _, err = proc.communicate(timeout=60)
    if not raw.exists():
        return f"Not profiled: py-spy wrote nothing ({err.decode(errors='replace')[-300:]})."
    profile = analyse("POST /v1/availability", "gil", raw, top=20)
    return (f"{rounds} requests in {took:.1f} s while py-spy sampled the API process at "
            f"250 Hz.\n\n" + profile_markdown(profile))
