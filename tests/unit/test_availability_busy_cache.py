"""The per-process cache of members' busy sets (services/availability_spans.py): a set is
served only at the generation it was read at, only while fresh, and memory stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.services.availability_mirror import MemberRecord
from gateway.services.availability_spans import SPAN_BYTES, BusyCache, span_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_set_is_served_only_at_its_generation() -> None:
    cache = BusyCache(1 << 20, 60)
    cache.put("k", 3, [(0, 10)])
    assert cache.get("k", 3) == [(0, 10)]
    assert cache.get("k", 4) is None  # the mirror moved on: dropped
    assert cache.get("k", 3) is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_served_set_is_a_copy() -> None:
    cache = BusyCache(1 << 20, 60)
    cache.put("k", 1, [(0, 10)])
    got = cache.get("k", 1)
    assert got is not None
    got.append((20, 30))
    assert cache.get("k", 1) == [(0, 10)]


def test_sets_age_out() -> None:
    clock = Clock()
    cache = BusyCache(1 << 20, 60, clock)
    cache.put("k", 1, [(0, 10)])
    clock.now = 60
    assert cache.get("k", 1) == [(0, 10)]
    clock.now = 60.5
    assert cache.get("k", 1) is None


def test_the_least_recently_used_go_first_once_full() -> None:
    cache = BusyCache(SPAN_BYTES * 6, 60)  # room for 6 spans, each entry counting one more
    cache.put("a", 1, [(0, 1), (2, 3)])
    cache.put("b", 1, [(0, 1), (2, 3)])
    assert cache.get("a", 1) is not None
    cache.put("c", 1, [(0, 1), (2, 3)])
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is not None and cache.get("c", 1) is not None
    cache.put("huge", 1, [(i, i + 1) for i in range(0, 20, 2)])  # larger than the cache
    assert cache.get("huge", 1) is None and len(cache) == 2


def test_the_key_names_what_shapes_the_set_besides_the_rows() -> None:
    start, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC)
    utc = MemberRecord("acc_a", ZoneInfo("Etc/UTC"), {"cal_1": None})
    keys = {span_key(utc, start, end, True),
            span_key(utc, start, end, False),
            span_key(utc, start, datetime(2027, 1, 3, tzinfo=UTC), True),
            span_key(MemberRecord("acc_a", ZoneInfo("Europe/Paris"), {"cal_1": None}),
                     start, end, True),
            span_key(MemberRecord("acc_a", ZoneInfo("Etc/UTC"),
                                  {"cal_1": ZoneInfo("Asia/Tokyo")}), start, end, True),
            span_key(MemberRecord("acc_a", ZoneInfo("Etc/UTC"), {"cal_2": None}),
                     start, end, True)}
    assert len(keys) == 6
    assert span_key(utc, start, end, True) == span_key(
        MemberRecord("acc_a", ZoneInfo("Etc/UTC"), {"cal_1": None}, generation=9),
        start, end, True)  # the generation is checked on get, not part of the key
