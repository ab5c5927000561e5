"""Parsing a feed and expanding its recurrences inside a window (CPU-bound: the provider
runs these in a worker thread).

recurring-ical-events does the RFC 5545 work: RRULE, RDATE, EXDATE, RECURRENCE-ID
overrides (THISANDFUTURE too), VTIMEZONE and DST, and X-WR-TIMEZONE for floating and UTC
times. This module adds what a server reading untrusted feeds needs: a bound on the work,
tolerance of one broken series, and a UID for events that lack one.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import time
from collections.abc import Iterator
from datetime import date, datetime

import recurring_ical_events
from icalendar import Calendar as ICalendar
from icalendar import Component, vRecur

from ..errors import InvalidInput
from ..model import Event, TimeWindow
from .mapping import FeedInfo, as_utc_datetime, feed_info, iana_tzid, overlaps, to_event
from .settings import DEFAULT_MAX_INSTANCES

Resources = dict[str, list[Event]]  # resource id (UID) -> its instances in the window
_COMPONENT = re.compile(rb"^(?:BEGIN|END):", re.IGNORECASE | re.MULTILINE)
_CALENDAR_PROPERTY = re.compile(rb"^(?:NAME|X-WR-CALNAME|X-WR-TIMEZONE)[;:]",
                                re.IGNORECASE | re.MULTILINE)
DEFAULT_BUDGET_SECONDS = 120.0
# dateutil walks a rule from its DTSTART, so an HOURLY rule started decades ago costs
# hundreds of thousands of steps (seconds of CPU) before the window even begins. A series
# whose walk is longer than this is not expanded (about 2 s of CPU at the limit).
MAX_RULE_STEPS = 200_000
_PERIOD_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86_400,
                   "WEEKLY": 7 * 86_400, "MONTHLY": 28 * 86_400, "YEARLY": 365 * 86_400}
log = logging.getLogger("calgate.providers.ics")


def _calendar_text(body: bytes) -> bytes:
    text = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text[:15].upper().startswith(b"BEGIN:VCALENDAR"):
        raise InvalidInput("the URL did not return an iCalendar feed "
                           "(the body does not start with BEGIN:VCALENDAR)")
    return text


def parse_calendar(body: bytes) -> ICalendar:
    """The feed as an icalendar Calendar; InvalidInput when it is not one."""
    text = _calendar_text(body)
    try:
        cal = ICalendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        # The class only: icalendar's message quotes the offending line (event text), and
        # this one is logged and kept as the profile's last sync error.
        raise InvalidInput(f"the feed is not valid iCalendar ({type(exc).__name__})") from None
    if not isinstance(cal, ICalendar):
        raise InvalidInput("the feed is not a VCALENDAR object")
    return cal


def _uid(component: Component) -> str:
    uid = str(component.get("UID", "")).strip()
    if uid:
        return uid
    # RFC 5545 requires a UID but some generators omit it: derive a stable one.
    seed = "|".join(str(component.get(k, "")) for k in ("DTSTART", "SUMMARY", "LOCATION"))
    return "calgate-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _first(rule: vRecur, key: str) -> object:
    values = rule.get(key)
    return values[0] if values else None


def rule_steps(rule: vRecur, dtstart: date | datetime, until: datetime) -> float:
    """About how many periods dateutil walks for ``rule`` from DTSTART up to ``until``."""
    period = _PERIOD_SECONDS.get(str(_first(rule, "FREQ") or "").upper())
    if period is None:
        return 0.0  # not a rule: the series' own checks reject it
    interval = _first(rule, "INTERVAL")
    rule_until = _first(rule, "UNTIL")
    end = min(until, as_utc_datetime(rule_until)) if isinstance(rule_until, date) else until
    span = (end - as_utc_datetime(dtstart)).total_seconds()
    steps = max(span, 0.0) / (period * max(interval if isinstance(interval, int) else 1, 1))
    count = _first(rule, "COUNT")
    return min(steps, float(count)) if isinstance(count, int) else steps


def _too_costly(event: Component, window: TimeWindow) -> bool:
    dtstart = getattr(event.get("DTSTART"), "dt", None)
    rules = event.get("RRULE")
    if not isinstance(dtstart, date):
        return False
    return any(rule_steps(rule, dtstart, window.end) > MAX_RULE_STEPS
               for rule in (rules if isinstance(rules, list) else [rules])
               if isinstance(rule, vRecur))  # a broken rule is left to the series' checks


def prepare(cal: ICalendar, window: TimeWindow) -> dict[str, bool]:
    """Make ``cal`` safe to expand, in place; returns UID -> whether it recurs."""
    tzid = iana_tzid(cal.get("X-WR-TIMEZONE"))
    if "X-WR-TIMEZONE" in cal:
        del cal["X-WR-TIMEZONE"]
    if tzid is not None:
        cal["X-WR-TIMEZONE"] = tzid  # an unknown zone name would abort the expansion
    recurs: dict[str, bool] = {}
    for event in cal.walk("VEVENT"):
        uid = _uid(event)
        event["UID"] = uid
        if _too_costly(event, window):
            log.warning("not expanding series %s: its rule walks more than %d periods",
                        uid, MAX_RULE_STEPS)
            del event["RRULE"]  # keep its first occurrence rather than hang the worker
        recurs[uid] = recurs.get(uid, False) or any(
            name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    return recurs


def _occurrences(cal: ICalendar, window: TimeWindow, deadline: float) -> Iterator[Component]:
    try:
        query = recurring_ical_events.of(cal, skip_bad_series=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the feed's events could not be read ({type(exc).__name__})"
                           ) from None
    skip = tuple(query.suppressed_errors)
    for series in query.series:
        _check(deadline)
        try:
            for occurrence in series.between(window.start, window.end):
                yield occurrence.as_component(False)
        except (*skip, ValueError, TypeError, OverflowError):
            continue  # one broken series must not hide the rest of the feed


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise InvalidInput("the feed takes too long to expand")


def expand(cal: ICalendar, window: TimeWindow, max_instances: int = DEFAULT_MAX_INSTANCES,
           budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> Resources:
    """Every resource of the feed (UID) with its instances inside ``window``; InvalidInput
    past ``max_instances`` instances or ``budget_seconds`` of work."""
    deadline = time.monotonic() + budget_seconds
    recurs = prepare(cal, window)
    resources: Resources = {uid: [] for uid in recurs}
    seen: set[str] = set()
    occurrences = itertools.islice(_occurrences(cal, window, deadline), max_instances + 1)
    for count, component in enumerate(occurrences, start=1):
        if count > max_instances:
            raise InvalidInput(f"the feed has more than {max_instances} event instances "
                               "in the sync window")
        uid = str(component["UID"])
        try:
            event = to_event(component, uid, recurs.get(uid, False))
        except ValueError:
            continue  # e.g. no DTSTART: nothing to place in time
        if overlaps(event, window) and event.instance_id not in seen:
            seen.add(event.instance_id)  # instance ids are unique within the calendar
            resources.setdefault(uid, []).append(event)
    for events in resources.values():
        events.sort(key=lambda e: (e.start.isoformat(), e.instance_id))
    return resources


def read_feed(body: bytes, window: TimeWindow,
              max_instances: int = DEFAULT_MAX_INSTANCES) -> tuple[FeedInfo, Resources]:
    """Parse and expand in one call (one trip to a worker thread)."""
    cal = parse_calendar(body)
    return feed_info(cal), expand(cal, window, max_instances)


def read_info(body: bytes) -> FeedInfo:
    """The calendar-level facts. When the feed states them before its first component (as
    generators do), only that head is parsed: listing a 10 MiB feed's one calendar should
    not cost a full parse on every sync."""
    text = _calendar_text(body)
    first = _COMPONENT.search(text, 15)
    if first is None:
        return feed_info(parse_calendar(text))
    info = feed_info(parse_calendar(text[:first.start()] + b"END:VCALENDAR\r\n"))
    if _CALENDAR_PROPERTY.search(text, first.start()):  # stated further down after all
        info = feed_info(parse_calendar(text))
    return info


def validate(body: bytes) -> FeedInfo:
    """Parse the whole feed (InvalidInput when it is not iCalendar) and read its facts."""
    return feed_info(parse_calendar(body))
