"""The interval algebra against Python sets of seconds, on small generated inputs."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.availability import intervals as iv

RAW = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=6)
CHECK = settings(max_examples=300, deadline=None, database=None)


def seconds_of(spans: list[tuple[int, int]]) -> set[int]:
    return {t for s, e in spans for t in range(s, e)}


def well_formed(spans: iv.Spans) -> bool:
    return all(s < e for s, e in spans) and all(
        a[1] < b[0] for a, b in pairwise(spans))


@CHECK
@given(RAW, RAW)
def test_union_intersect_subtract_are_the_set_operations(a, b):
    x, y = iv.normalise(a), iv.normalise(b)
    assert seconds_of(x) == seconds_of(a) and well_formed(x)
    for got, want in ((iv.union(x, y), seconds_of(a) | seconds_of(b)),
                      (iv.intersect(x, y), seconds_of(a) & seconds_of(b)),
                      (iv.subtract(x, y), seconds_of(a) - seconds_of(b))):
        assert seconds_of(got) == want and well_formed(got)


@CHECK
@given(st.lists(RAW, min_size=1, max_size=4), st.integers(1, 4))
def test_at_least_counts_members_per_second(members, k):
    sets = [iv.normalise(m) for m in members]
    got = iv.at_least(k, sets)
    want = {t for t in range(61) if sum(t in seconds_of(m) for m in sets) >= k}
    assert seconds_of(got) == want and well_formed(got)


@CHECK
@given(RAW, st.integers(0, 5), st.integers(0, 5), st.integers(0, 60), st.integers(0, 60))
def test_expand_clip_complement_shrink_and_holds(a, before, after, lo, hi):
    x = iv.normalise(a)
    widened = iv.expand(x, before, after)
    assert seconds_of(widened) == {u for s, e in x for u in range(s - before, e + after)}
    assert seconds_of(iv.clip(x, lo, hi)) == seconds_of(x) & set(range(lo, hi))
    assert seconds_of(iv.complement(x, lo, hi)) == set(range(lo, hi)) - seconds_of(x)
    assert seconds_of(iv.shrink_end(x, before)) == {
        t for s, e in x for t in range(s, e - before)}
    assert all(iv.holds(x, t) == (t in seconds_of(x)) for t in range(-1, 62))
