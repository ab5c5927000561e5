"""The rendered-page cache: served only at the generation it was rendered at, while fresh,
within its byte budget (least recently used go first)."""

from __future__ import annotations

from gateway.services.pagecache import PageCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_page_is_served_only_at_its_generation():
    cache = PageCache(1000, 60)
    cache.put("k", 3, b"page")
    assert cache.get("k", 3) == b"page"
    assert cache.get("k", 4) is None  # the mirror changed since
    assert cache.get("k", 3) is None  # and the stale entry is gone for good
    assert len(cache) == 0 and cache.size == 0


def test_pages_age_out():
    clock = Clock()
    cache = PageCache(1000, 60, clock)
    cache.put("k", 1, b"page")
    clock.now += 59
    assert cache.get("k", 1) == b"page"
    clock.now += 2
    assert cache.get("k", 1) is None


def test_least_recently_used_go_first_within_the_byte_budget():
    cache = PageCache(10, 60)
    cache.put("a", 1, b"aaaa")
    cache.put("b", 1, b"bbbb")
    assert cache.get("a", 1) == b"aaaa"  # a is now the most recently used
    cache.put("c", 1, b"cccc")  # 12 bytes > 10: b goes
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == b"aaaa" and cache.get("c", 1) == b"cccc"
    assert cache.size == 8
    cache.put("huge", 1, b"x" * 11)  # bigger than the whole budget: not kept
    assert cache.get("huge", 1) is None and cache.size == 8


def test_replacing_a_key_keeps_the_byte_count_right():
    cache = PageCache(100, 60)
    cache.put("k", 1, b"12345")
    cache.put("k", 2, b"123")
    assert cache.size == 3 and cache.get("k", 2) == b"123"
    cache.clear()
    assert cache.size == 0 and cache.get("k", 2) is None
