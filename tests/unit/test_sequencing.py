"""Sequenced availability's search (gateway/domain/availability/sequencing.py): steps in
order, gaps between the buffers' minimum and maximum, checked against brute force."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from gateway.domain.availability.sequencing import Gap, Placed, Step, gap_bounds, sequences

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def slots(*starts: int, length: int = 60) -> list[tuple[datetime, datetime]]:
    return [(at(s), at(s + length)) for s in starts]


def mins(n: int) -> timedelta:
    return timedelta(minutes=n)


def test_two_steps_back_to_back() -> None:
    steps = [Step("a", slots(0, 60, 120)), Step("b", slots(60, 120, 180))]
    got = sequences(steps, limit=10)
    assert got[0] == [Placed("a", at(0), at(60)), Placed("b", at(60), at(120))]
    assert [seq[0].start for seq in got] == [at(0), at(60), at(120)]
    assert all(seq[1].start >= seq[0].end for seq in got)


def test_minimum_gap_from_either_side() -> None:
    first = Step("a", slots(0), after=Gap(minimum=mins(15)))
    second = Step("b", slots(60, 75, 90), before=Gap(minimum=mins(30)))
    (only,) = sequences([first, second], limit=5)
    assert only[1].start == at(90)  # the larger minimum (30) wins


def test_maximum_gap_from_either_side() -> None:
    first = Step("a", slots(0), after=Gap(maximum=mins(90)))
    second = Step("b", slots(180), before=Gap(maximum=mins(180)))
    assert sequences([first, second], limit=5) == []  # a 120-minute gap, at most 90
    second = Step("b", slots(120, 180))
    assert sequences([first, second], limit=5)[0][1].start == at(120)
    assert gap_bounds(first, Step("b", [], before=Gap(mins(5), mins(60)))) == (mins(5), mins(60))


def test_steps_never_overlap_even_without_buffers() -> None:
    assert sequences([Step("a", slots(0)), Step("b", slots(30))], limit=5) == []


def test_the_search_backtracks_when_the_earliest_choice_fails() -> None:
    # b's earliest slot (60) leaves c out of reach (at most 30 after b), b's later one works.
    steps = [Step("a", slots(0)), Step("b", slots(60, 300)),
             Step("c", slots(390), before=Gap(maximum=mins(30)))]
    (only,) = sequences(steps, limit=5)
    assert [p.start for p in only] == [at(0), at(300), at(390)]


def test_limit_and_budget() -> None:
    steps = [Step("a", slots(*range(0, 6000, 60))), Step("b", slots(*range(0, 6000, 60)))]
    assert len(sequences(steps, limit=3)) == 3
    assert sequences(steps, limit=0) == [] and sequences([], limit=3) == []
    assert len(sequences(steps, limit=100, budget=10)) < 100


def brute(steps: list[Step]) -> list[datetime]:
    """Every first-step start from which some ordering of slots satisfies all gaps."""
    found = set()
    for combo in itertools.product(*(step.slots for step in steps)):
        fine = True
        for (earlier, later), (x, y) in zip(itertools.pairwise(steps),
                                            itertools.pairwise(combo), strict=True):
            least, most = gap_bounds(earlier, later)
            gap = y[0] - x[1]
            fine &= gap >= least and (most is None or gap <= most)
        if fine:
            found.add(combo[0][0])
    return sorted(found)


def test_matches_brute_force_on_random_cases() -> None:
    rng = random.Random(15)
    for _ in range(400):
        steps = []
        for index in range(rng.randint(1, 4)):
            starts = sorted(rng.sample(range(0, 600, 15), rng.randint(0, 6)))
            most = rng.choice([None, 0, 30, 90])
            steps.append(Step(f"s{index}", slots(*starts, length=rng.choice([15, 30, 60])),
                              before=Gap(mins(rng.choice([0, 15, 30])),
                                         None if most is None else mins(most)),
                              after=Gap(mins(rng.choice([0, 15])))))
        got = sequences(steps, limit=1000)
        assert [seq[0].start for seq in got] == brute(steps)
        for seq in got:
            for (earlier, later), (x, y) in zip(itertools.pairwise(steps),
                                                itertools.pairwise(seq), strict=True):
                least, most = gap_bounds(earlier, later)
                assert y.start - x.end >= least
                assert most is None or y.start - x.end <= most
