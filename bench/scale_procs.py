"""CPU accounting for bench/run_scale_bench.py: what each group of processes (the API, each
worker, Radicale, PostgreSQL, everything else) used over a window, from /proc.

A group is a set of root PIDs and all their descendants (``calgate serve`` is uvicorn's
supervisor, which spawns the API worker processes), or every process with a given name
(PostgreSQL's postmaster and backends). Each is read at the window's start and end; a
process born inside the window counts from zero, and one that exited inside it counts in
its parent's ``cutime`` + ``cstime`` (the children it has waited for).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

HZ = os.sysconf("SC_CLK_TCK")


class Proc(NamedTuple):
    name: str
    ppid: int
    own: float  # CPU seconds (utime + stime, every thread)
    reaped: float  # CPU seconds of its children that exited and were waited for

    @property
    def cpu(self) -> float:
        """Its own CPU and its exited children's: a PostgreSQL backend that closes inside
        a window (a connection beyond a pool's size, closed when handed back) counts in
        its postmaster's."""
        return self.own + self.reaped


def _stat(pid: int) -> Proc | None:
    """A live process from /proc/<pid>/stat; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    f = [int(x) if x.lstrip("-").isdigit() else 0 for x in text.rsplit(")", 1)[1].split()]
    return Proc(name, f[1], (f[11] + f[12]) / HZ, (f[13] + f[14]) / HZ)


def snapshot() -> dict[int, Proc]:
    """Every process the machine has right now."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = found
    return out


def machine_busy() -> float:
    """CPU seconds (all CPUs, every process) since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / HZ


def descendants(roots: list[int], procs: dict[int, Proc]) -> set[int]:
    found = {r for r in roots if r in procs}
    grew = True
    while grew:
        more = {pid for pid, p in procs.items() if p.ppid in found} - found
        found |= more
        grew = bool(more)
    return found


@dataclass
class Groups:
    """Named groups of processes: by root PIDs (and their children) or by process name."""

    roots: dict[str, list[int]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # group -> process name (comm)

    def members(self, procs: dict[int, Proc]) -> dict[str, set[int]]:
        out = {g: descendants(r, procs) for g, r in self.roots.items()}
        for group, name in self.names.items():
            out[group] = {pid for pid, p in procs.items() if p.name == name}
        return out


@dataclass
class Window:
    """CPU seconds per group, and the machine's, between :meth:`start` and :meth:`stop`."""

    groups: Groups
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    per_process: dict[str, list[float]] = field(default_factory=dict)  # busiest first
    reaped: dict[str, float] = field(default_factory=dict)  # of cpu: children that exited
    machine: float = 0.0
    _t0: float = 0.0
    _busy0: float = 0.0
    _before: dict[int, Proc] = field(default_factory=dict)

    def start(self) -> Window:
        self._before, self._busy0, self._t0 = snapshot(), machine_busy(), time.monotonic()
        return self

    def stop(self) -> Window:
        after, busy, self.wall = snapshot(), machine_busy(), time.monotonic() - self._t0
        self.machine = busy - self._busy0
        seen: set[int] = set()
        for group, pids in self.groups.members(after).items():
            pids -= seen  # a PID counts in the first group that claims it
            seen |= pids
            used = sorted((after[p].cpu - self._prior(p, after[p], "cpu") for p in pids),
                          reverse=True)
            self.cpu[group] = sum(used)
            self.reaped[group] = sum(after[p].reaped - self._prior(p, after[p], "reaped")
                                     for p in pids)
            if group in self.groups.roots:
                self.per_process[group] = [u for u in used if u > 0]
        self.cpu["other"] = max(
            0.0, self.machine - sum(self.cpu.values()))
        return self

    def _prior(self, pid: int, now: Proc, what: str) -> float:
        before = self._before.get(pid)
        # The same PID with another name is a new process that reused it.
        if before is None or before.name != now.name:
            return 0.0
        return float(getattr(before, what))

    def cores(self, group: str) -> float:
        return self.cpu.get(group, 0.0) / self.wall if self.wall else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"wall_s": self.wall, "machine_cpu_s": self.machine, "cpu_s": dict(self.cpu),
                "per_process_cpu_s": dict(self.per_process),
                "reaped_cpu_s": dict(self.reaped)}
