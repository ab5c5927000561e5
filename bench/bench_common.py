"""Helpers every benchmark runner shares: where things are, a measuring child process,
the process's own memory counters, and a digest of the code measured."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
MARKER = "SYNC_JSON "  # the line a child prints its result on


def run_child(script: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``bench/<script>`` in a process (and session) of its own, handed ``job`` as JSON;
    its result is the JSON after :data:`MARKER`. Stopped by its PID on timeout."""
    proc = subprocess.Popen([str(PYTHON), str(BENCH / script), json.dumps(job)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # Popen.kill: SIGKILL to this child's own PID
        proc.communicate()
        raise
    line = next((x for x in out.splitlines() if x.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {err[-3000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix(MARKER))
    return result


def code_digest(packages: tuple[str, ...] = ("gateway", "oauth_server", "providers")) -> str:
    """A short sha256 of the measured sources, so a result names the code it measured."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def proc_status(key: str) -> int:
    """A ``/proc/self/status`` counter in kB (VmRSS, VmHWM); 0 where there is none."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_and_memory() -> dict[str, str]:
    """The machine's CPU count and model, memory, Python and kernel, for every report."""
    import os
    import platform

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal")).split()[1])
    return {"CPUs (nproc)": str(os.cpu_count()), "CPU model": cpu,
            "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "Python": platform.python_version(), "kernel": platform.release()}


def publish(result: dict[str, Any], report: str, name: str, json_path: Path | None,
            write: bool) -> None:
    """Print a runner's report; keep its raw result (``--json``) and, unless ``--no-write``,
    write ``RESULTS-<name>.md`` and regenerate the RESULTS.md index."""
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=1))
    print(report)
    if write:
        (BENCH / f"RESULTS-{name}.md").write_text(report)
        from results_index import write_index

        write_index()


def reproducible(argv: list[str]) -> list[str]:
    """A runner's command line without what only changes where output goes (--json FILE,
    --keep, --no-write), for its report's "reproduce" line."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif arg not in {"--keep", "--no-write"} and not arg.startswith("--json="):
            out.append(arg)
    return out
