"""The availability benchmark's pipeline (bench/run_availability_bench.py) at a tiny size: 2
members of 10 events over one week, in real Radicale, the Google emulator and a real Calgate
deployment on PostgreSQL that synced Radicale into its mirror. Every way the bench answers
the question must give the same slots as the calendars as generated. Correctness only:
nothing here is timed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import availability_methods as am  # noqa: E402
import availability_slots as sl  # noqa: E402
from availability_setup import Size, staged  # noqa: E402


@pytest.fixture(scope="module")
def methods(tmp_path_factory: pytest.TempPathFactory):
    with staged(tmp_path_factory.mktemp("availability-bench"), Size(2, 10, 7),
                lambda _message: None) as stage:
        methods = am.Methods(stage)
        try:
            yield methods
        finally:
            methods.close()


def reference(methods: am.Methods) -> list[sl.Slot]:
    stage = methods.stage
    return sl.slots(stage.question, {m.sub: sl.from_calendar(stage.calendars[m.user])
                                     for m in stage.members})


def test_the_calendars_hold_every_kind_of_event_and_leave_some_slots(methods):
    kinds = {e.kind for events in methods.stage.calendars.values() for e in events}
    assert kinds == {"busy", "tentative", "transparent", "cancelled", "outside",
                     "allday_busy", "allday_free"}
    expected = reference(methods)
    q = methods.stage.question
    candidates = len(q.periods) * ((10 * 60 - 60) // 15 + 1)
    # Neither everything nor nothing: the busy events take some candidates away.
    assert 0 < len(expected) < candidates


@pytest.mark.parametrize("name", ["free_busy", "radicale", "google"])
def test_client_side_methods_give_the_reference_slots(methods, name):
    expected = tuple(reference(methods))
    got = tuple(getattr(methods, name)())
    assert am.compare(expected, got, methods.stage.sub_of()) == {
        "equal": True, "expected": len(expected), "got": len(expected), "missing": [],
        "extra": []}


def test_the_endpoint_gives_the_reference_slots(methods):
    expected = tuple(reference(methods))
    got = tuple(methods.endpoint())
    assert am.compare(expected, got, methods.stage.sub_of()) == {
        "equal": True, "expected": len(expected), "got": len(expected), "missing": [],
        "extra": []}


def test_the_endpoint_gives_the_reference_slots_cold_and_warm(methods):
    """The bench's cold rounds (every member's generation moved first) and warm rounds (the
    same question again) both answer right."""
    expected = tuple(reference(methods))
    names = methods.stage.sub_of()
    changed = []
    cold = am.timed("cold", methods.endpoint, 2, 0, methods.counter("endpoint"),
                    prepare=lambda: changed.append(methods.change()))
    warm = am.timed("warm", methods.endpoint, 2, 1, methods.counter("endpoint"))
    assert len(changed) == 2
    for timing in (cold, warm):
        assert timing.requests == 1
        assert am.compare(expected, timing.answer, names)["equal"]
