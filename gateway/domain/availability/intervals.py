"""An interval algebra over sorted, merged lists of half-open intervals of integer seconds.

A *span* is ``(start, end)`` with ``start < end``, meaning every second ``t`` with
``start <= t < end`` (seconds since the Unix epoch, UTC). A *set* is a list of spans sorted
by start, pairwise disjoint and not touching (``a.end < b.start``): :func:`normalise` makes
one from any list. Every operation here takes and returns sets and runs in time linear in
the sizes of its inputs (plus a sort for :func:`normalise` and :func:`at_least`), so an
availability answer costs arithmetic over boundaries, never a loop over candidate minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

Span = tuple[int, int]
Spans = list[Span]


def seconds(value: datetime) -> int:
    """An aware datetime as whole seconds since the epoch (sub-second parts are dropped)."""
    return int(value.timestamp() // 1)


def moment(value: int) -> datetime:
    """Whole seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def normalise(spans: Iterable[Span]) -> Spans:
    """Sort, drop empty spans and merge overlapping or touching ones."""
    out: Spans = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def union(a: Spans, b: Spans) -> Spans:
    """Every second in ``a`` or ``b``."""
    return normalise([*a, *b])


def intersect(a: Spans, b: Spans) -> Spans:
    """Every second in both ``a`` and ``b`` (a merge walk over both lists)."""
    out: Spans = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Spans, b: Spans) -> Spans:
    """Every second in ``a`` and not in ``b``."""
    out: Spans = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k, cursor = j, start
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def clip(a: Spans, start: int, end: int) -> Spans:
    """The part of ``a`` inside ``[start, end)``."""
    return intersect(a, [(start, end)] if start < end else [])


def complement(a: Spans, start: int, end: int) -> Spans:
    """Every second of ``[start, end)`` not in ``a``."""
    return subtract([(start, end)] if start < end else [], a)


def expand(a: Spans, before: int, after: int) -> Spans:
    """Each span widened by ``before`` seconds at its start and ``after`` at its end.

    Buffers use it: a busy span blocks a slot that ends within ``before``-side reach of it
    or starts within ``after``-side reach, so busy time is widened, then subtracted."""
    if before == 0 and after == 0:
        return list(a)
    return normalise((s - before, e + after) for s, e in a)


def shrink_end(a: Spans, by: int) -> Spans:
    """Each span with ``by`` seconds taken off its end; spans no longer than that vanish.

    The starts of a ``d``-second stretch inside a set are ``shrink_end(set, d - 1)`` when
    ``d >= 1``: ``[a, b)`` holds ``[s, s + d)`` exactly for ``a <= s <= b - d``."""
    return [(s, e - by) for s, e in a if e - by > s]


def at_least(k: int, members: Sequence[Spans]) -> Spans:
    """Every second at which at least ``k`` of the member sets hold it: one sweep over the
    sorted boundaries of all members, counting how many are inside."""
    if k <= 0:
        raise ValueError("k must be positive")
    if k > len(members):
        return []
    if len(members) == 1:
        return list(members[0])
    edges = sorted([(s, 1) for m in members for s, _ in m]
                   + [(e, -1) for m in members for _, e in m])
    out: Spans = []
    inside, opened = 0, 0
    for at, step in edges:
        was = inside >= k
        inside += step
        if not was and inside >= k:
            opened = at
        elif was and inside < k and opened < at:
            out.append((opened, at))
    return normalise(out)


def holds(a: Spans, t: int) -> bool:
    """Whether second ``t`` lies in ``a`` (binary search)."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid][1] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(a) and a[lo][0] <= t


def overlapping(a: Spans, start: int, end: int) -> Spans:
    """The spans of ``a`` that share at least a second with ``[start, end)``, whole."""
    return [(s, e) for s, e in a if s < end and e > start]


__all__ = ["Span", "Spans", "at_least", "clip", "complement", "expand", "holds",
           "intersect", "moment", "normalise", "overlapping", "seconds", "shrink_end",
           "subtract", "union"]
