"""Waiting for something a server does in the background (its worker, a push).

Tests wait on state: they poll until the state they need holds. The deadline is only a
guard against a hang, and it stretches with the machine's load, so a run beside other
CPU-bound work (CI on a busy machine) gets the time it needs instead of failing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# CALGATE_TEST_TIME_SCALE fixes the factor (e.g. 4 under a debugger or on a slow VM).
_FIXED = os.environ.get("CALGATE_TEST_TIME_SCALE")
_CPUS = os.cpu_count() or 1


def time_scale() -> float:
    """How many times longer than on an idle machine a wait may take right now.

    The one-minute load average per CPU, less the load the test run itself makes (about
    one runnable process per CPU when pytest-xdist runs one worker per CPU): each further
    runnable process per CPU roughly doubles how long CPU-bound work takes.
    """
    if _FIXED:
        return max(1.0, float(_FIXED))
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return 1.0
    return min(8.0, max(1.0, load / _CPUS))


class Deadline:
    """A deadline of ``seconds`` on an idle machine, stretched by the load while it runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def passed(self) -> bool:
        # Re-read the load at each check: a machine that gets busy mid-wait extends it.
        return self.elapsed() >= self.seconds * time_scale()

    def left(self) -> float:
        return max(0.0, self.seconds * time_scale() - self.elapsed())


def scaled(seconds: float) -> float:
    """``seconds`` on an idle machine, as a fixed timeout on this one right now."""
    return seconds * time_scale()


def eventually(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = Deadline(timeout)
    while True:
        value = check()
        if value:
            return value
        assert not deadline.passed(), (
            f"timed out waiting ({deadline.elapsed():.1f} s; idle-machine budget {timeout} s, "
            f"load scale now {time_scale():.1f})")
        time.sleep(interval)
