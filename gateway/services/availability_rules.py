"""Managed availability's store (API.md s8.3): an account's availability rules and available
periods, upserted by the app's own ids and erased with the account (ON DELETE CASCADE).

Limits keep one account's rows small enough to expand on every availability query
(:class:`Limits`: 50 rules of at most 100 weekly periods, 5,000 available periods).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from ..domain.availability.rules import DAYS, WeeklyPeriod, parse_clock
from ..persistence.tables import availability_rules, available_periods, calendars, profiles

MAX_WEEKLY_PERIODS = 100  # per rule (checked where the body is parsed)
PAGE_SIZE = 100


class AvailabilityError(Exception):
    """A request the store refuses: ``field`` and ``code`` name it for a 422."""

    def __init__(self, field: str, code: str, description: str) -> None:
        super().__init__(description)
        self.field, self.code, self.description = field, code, description


@dataclass(frozen=True, slots=True)
class Rule:
    """An availability rule: weekly periods in ``tzid``; ``calendar_ids`` are the calendars
    that count as busy under it (None: every calendar of the account)."""

    rule_id: str
    tzid: str
    calendar_ids: tuple[str, ...] | None
    periods: tuple[WeeklyPeriod, ...]

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"availability_rule_id": self.rule_id, "tzid": self.tzid}
        if self.calendar_ids is not None:
            body["calendar_ids"] = list(self.calendar_ids)
        body["weekly_periods"] = [p.as_json() for p in self.periods]
        return body


@dataclass(frozen=True, slots=True)
class Period:
    """A one-off available period, in UTC."""

    period_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PeriodPage:
    """One page of an account's available periods; ``after`` is where the next one starts
    (None on the last page)."""

    periods: list[Period]
    current: int
    total: int
    after: tuple[datetime, str] | None


@dataclass(frozen=True, slots=True)
class Limits:
    """How many rules and available periods one account may keep."""

    rules: int = 50
    periods: int = 5000


class AvailabilityRuleService:
    """Availability rules and available periods of an account."""

    def __init__(self, engine: Engine, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()

    def upsert_rule(self, account_id: str, rule: Rule) -> Rule:
        with self.engine.begin() as conn:
            if rule.calendar_ids is not None:
                _check_calendars(conn, account_id, rule.calendar_ids)
            values = {"tzid": rule.tzid, "calendar_ids": _list(rule.calendar_ids),
                      "weekly_periods": [p.as_json() for p in rule.periods],
                      "updated_at": datetime.now(UTC)}
            changed = conn.execute(update(availability_rules).where(
                availability_rules.c.account_id == account_id,
                availability_rules.c.rule_id == rule.rule_id).values(**values)).rowcount
            if not changed:
                if _count(conn, availability_rules, account_id) >= self.limits.rules:
                    raise AvailabilityError("availability_rule_id", "too_many",
                                            f"an account has at most {self.limits.rules} "
                                            "rules")
                conn.execute(insert(availability_rules).values(
                    account_id=account_id, rule_id=rule.rule_id, **values))
        return rule

    def list_rules(self, account_id: str, rule_ids: Sequence[str] | None = None
                   ) -> list[Rule]:
        """The account's rules by id (only ``rule_ids`` when given)."""
        query = select(availability_rules).where(availability_rules.c.account_id == account_id)
        if rule_ids is not None:
            query = query.where(availability_rules.c.rule_id.in_(list(rule_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(availability_rules.c.rule_id)).all()
        return [_rule(row) for row in rows]

    def find_rule(self, account_id: str, rule_id: str) -> Rule | None:
        found = self.list_rules(account_id, [rule_id])
        return found[0] if found else None

    def delete_rule(self, account_id: str, rule_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(availability_rules).where(
                availability_rules.c.account_id == account_id,
                availability_rules.c.rule_id == rule_id)).rowcount)

    def live_calendars(self, account_id: str) -> set[str]:
        """The ids of the account's calendars that still exist."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(calendars.c.id).join(
                profiles, profiles.c.id == calendars.c.profile_id).where(
                profiles.c.account_id == account_id, calendars.c.deleted.is_(False))
                ).scalars())

    def upsert_period(self, account_id: str, period: Period) -> None:
        values = {"start_at": period.start, "end_at": period.end}
        with self.engine.begin() as conn:
            changed = conn.execute(update(available_periods).where(
                available_periods.c.account_id == account_id,
                available_periods.c.period_id == period.period_id).values(**values)).rowcount
            if changed:
                return
            if _count(conn, available_periods, account_id) >= self.limits.periods:
                raise AvailabilityError("available_period_id", "too_many",
                                        f"an account has at most {self.limits.periods} "
                                        "available periods")
            conn.execute(insert(available_periods).values(
                account_id=account_id, period_id=period.period_id, **values))

    def delete_periods(self, account_id: str, period_id: str | None) -> int:
        """Delete one available period, or every one (``period_id`` None)."""
        query = delete(available_periods).where(available_periods.c.account_id == account_id)
        if period_id is not None:
            query = query.where(available_periods.c.period_id == period_id)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount)

    def periods_between(self, account_id: str, start: datetime | None, end: datetime | None
                        ) -> list[Period]:
        """Every available period overlapping [``start``, ``end``), by start."""
        with self.engine.connect() as conn:
            rows = conn.execute(_overlapping(account_id, start, end).order_by(
                available_periods.c.start_at, available_periods.c.period_id)).all()
        return [_period(row) for row in rows]

    def list_periods(self, account_id: str, start: datetime | None, end: datetime | None,
                     page: int = 1, after: tuple[datetime, str] | None = None) -> PeriodPage:
        """A page of the periods overlapping [``start``, ``end``), continuing ``after``."""
        base = _overlapping(account_id, start, end)
        query = base
        if after is not None:
            query = query.where(or_(available_periods.c.start_at > after[0], and_(
                available_periods.c.start_at == after[0],
                available_periods.c.period_id > after[1])))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
            rows = conn.execute(query.order_by(available_periods.c.start_at,
                                               available_periods.c.period_id)
                                .limit(PAGE_SIZE + 1)).all()
        found = [_period(row) for row in rows[:PAGE_SIZE]]
        more = len(rows) > PAGE_SIZE
        pages = max(1, -(-int(total) // PAGE_SIZE))
        return PeriodPage(found, page, max(pages, page),
                          (found[-1].start, found[-1].period_id) if more else None)


def parse_weekly_period(raw: object, field: str) -> WeeklyPeriod:
    """One ``{day, start_time, end_time}``; AvailabilityError naming the field otherwise."""
    if not isinstance(raw, dict):
        raise AvailabilityError(field, "invalid", f"{field} must be an object")
    day, start, end = raw.get("day"), raw.get("start_time"), raw.get("end_time")
    if not isinstance(day, str) or day.lower() not in DAYS:
        raise AvailabilityError(f"{field}.day", "invalid",
                                f"{field}.day must be one of {', '.join(DAYS)}")
    lo = parse_clock(start) if isinstance(start, str) else None
    hi = parse_clock(end, allow_end_of_day=True) if isinstance(end, str) else None
    if lo is None:
        raise AvailabilityError(f"{field}.start_time", "invalid",
                                f"{field}.start_time must be a time of day like 09:30")
    if hi is None:
        raise AvailabilityError(f"{field}.end_time", "invalid",
                                f"{field}.end_time must be a time of day like 17:30 "
                                "(24:00 for midnight)")
    if hi <= lo:
        raise AvailabilityError(f"{field}.end_time", "invalid",
                                f"{field}.end_time must be after {field}.start_time")
    return WeeklyPeriod(DAYS.index(day.lower()), lo, hi)


def _overlapping(account_id: str, start: datetime | None, end: datetime | None) -> Any:
    query = select(available_periods).where(available_periods.c.account_id == account_id)
    if start is not None:
        query = query.where(available_periods.c.end_at > start)
    if end is not None:
        query = query.where(available_periods.c.start_at < end)
    return query


def _check_calendars(conn: Any, account_id: str, wanted: Sequence[str]) -> None:
    known = set(conn.execute(select(calendars.c.id).join(
        profiles, profiles.c.id == calendars.c.profile_id).where(
        profiles.c.account_id == account_id, calendars.c.id.in_(list(wanted)))).scalars())
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise AvailabilityError("calendar_ids", "unknown_calendar",
                                f"calendar_ids names calendars this account does not have: "
                                f"{', '.join(unknown[:5])}")


def _count(conn: Any, table: Any, account_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(
        table.c.account_id == account_id)).scalar_one())


def _list(ids: tuple[str, ...] | None) -> list[str] | None:
    return None if ids is None else list(ids)


def _rule(row: Any) -> Rule:
    periods = tuple(parse_weekly_period(p, "weekly_periods") for p in row.weekly_periods)
    ids = None if row.calendar_ids is None else tuple(row.calendar_ids)
    return Rule(row.rule_id, row.tzid, ids, periods)


def _period(row: Any) -> Period:
    return Period(row.period_id, _utc(row.start_at), _utc(row.end_at))


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
