"""The body of ``POST /v1/sequenced_availability`` (API.md s8.2): each ``sequence`` item is
parsed as an availability query of its own (POST /v1/availability's parser and limits), so
an error names the item: ``sequence[1].required_duration``.

Accepted as the SDKs send them: ``start_interval: null`` and ``buffer: {}`` (pycronofy),
``query_periods`` or the legacy ``available_periods``, numeric ``sequence_id``s. An item's
own ``available_periods`` narrow the query periods for that event; ``event`` is accepted
and not used (it describes the event an app would create). Each event is placed among its
first 512 candidate slots (POST /v1/availability's ``max_results`` limit), which bounds the
work one request can cause.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from ..domain.availability import intervals as iv
from ..domain.availability.sequencing import Gap
from ..services.sequenced import SequenceItem
from .availability_body import MAX_BUFFER_MINUTES, MAX_RESULTS, parse
from .params import InvalidParam, Params

MAX_ITEMS = 10
MAX_SEQUENCES, DEFAULT_SEQUENCES = 100, 20


@dataclass(frozen=True, slots=True)
class ParsedSequence:
    items: list[SequenceItem]
    tentative_busy: bool
    limit: int


def parse_sequence(params: Params) -> ParsedSequence:
    raw = params.raw("sequence")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS:
        raise InvalidParam("sequence", "required" if raw is None else "invalid",
                           f"sequence must be a list of 1 to {MAX_ITEMS} events")
    periods = _top_periods(params)
    items = [_item(value, f"sequence[{i}]", periods, params) for i, value in enumerate(raw)]
    labels = [item.label for item in items]
    if len({str(label) for label in labels}) != len(labels):
        raise InvalidParam("sequence.sequence_id", "invalid",
                           "each event of the sequence needs its own sequence_id")
    ordinals = [_ordinal(value, f"sequence[{i}]") for i, value in enumerate(raw)]
    ordered = [item for _, _, item in sorted(zip(ordinals, range(len(items)), items,
                                                 strict=True))]
    return ParsedSequence(ordered, params.flag("calgate_tentative_busy", True),
                          _limit(params.raw("max_results")))


def _top_periods(params: Params) -> Any:
    name = "query_periods" if params.given("query_periods") else "available_periods"
    if not params.given(name):
        raise InvalidParam("query_periods", "required", "query_periods must be specified")
    return params.raw(name)


def _item(value: Any, field: str, periods: Any, params: Params) -> SequenceItem:
    if not isinstance(value, dict):
        raise InvalidParam(field, "invalid", f"{field} must be an object")
    label = value.get("sequence_id")
    if isinstance(label, bool) or not isinstance(label, str | int) or label == "" \
            or len(str(label)) > 64:
        raise InvalidParam(f"{field}.sequence_id", "required",
                           f"{field}.sequence_id must be a string of 1 to 64 characters")
    own = value.get("available_periods")
    values = {"participants": value.get("participants"),
              "required_duration": value.get("required_duration"),
              "start_interval": value.get("start_interval"), "buffer": value.get("buffer"),
              "query_periods": periods, "response_format": "overlapping_slots",
              "max_results": MAX_RESULTS}
    try:
        query = parse(Params(values)).query
        narrowed = parse(Params(values | {"query_periods": own})).query if own else None
    except InvalidParam as exc:
        raise _within(field, exc) from None
    # Each event's first MAX_RESULTS (512) candidate slots: the bound on one request's work.
    before, after = _gaps(value.get("buffer"), field)
    if narrowed is None:
        return SequenceItem(label, query, before, after)
    spans = iv.intersect(iv.normalise(query.query_periods),
                         iv.normalise(narrowed.query_periods))
    return SequenceItem(label, replace(query, query_periods=tuple(spans)) if spans else None,
                        before, after)


def _within(field: str, exc: InvalidParam) -> InvalidParam:
    """The availability parser's error, named inside the sequence item."""
    errors = exc.body.get("errors")
    found = errors.get(exc.field) if isinstance(errors, dict) else None
    first = found[0] if isinstance(found, list) and found else None
    description = first.get("description", "") if isinstance(first, dict) else ""
    return InvalidParam(f"{field}.{exc.field}", exc.code, f"{field}: {description}")


def _gaps(buffer: Any, field: str) -> tuple[Gap, Gap]:
    """The least and greatest gap to the events before and after (already checked by the
    availability parser, which takes the minimums as free time around each slot)."""
    if not isinstance(buffer, dict):
        return Gap(), Gap()
    return _gap(buffer.get("before")), _gap(buffer.get("after"))


def _gap(side: Any) -> Gap:
    if isinstance(side, dict) and ("minimum" in side or "maximum" in side):
        low, high = _minutes(side.get("minimum")), _minutes(side.get("maximum"))
        return Gap(low or timedelta(0), high)
    return Gap(_minutes(side) or timedelta(0))


def _minutes(value: Any) -> timedelta | None:
    count = value.get("minutes") if isinstance(value, dict) else value
    if isinstance(count, str) and count.strip().isdigit():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int):
        return None
    return timedelta(minutes=min(max(count, 0), MAX_BUFFER_MINUTES))


def _ordinal(value: dict[str, Any], field: str) -> int:
    ordinal = value.get("ordinal")
    if isinstance(ordinal, str) and ordinal.strip().isdigit():
        ordinal = int(ordinal)
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or not 0 <= ordinal <= 1000:
        raise InvalidParam(f"{field}.ordinal", "required",
                           f"{field}.ordinal must be a whole number (the event's place)")
    return ordinal


def _limit(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_SEQUENCES
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 1 <= value <= MAX_SEQUENCES:
        raise InvalidParam("max_results", "invalid",
                           f"max_results must be a number from 1 to {MAX_SEQUENCES}")
    return value
