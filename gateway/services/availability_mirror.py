"""What an availability answer reads from the mirror: members, their calendars, busy rows.

Only plaintext columns (times, status, transparency, the owner's answer) on the events
index; event text is unsealed only for an explanation the token may read events for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select

from ..domain.availability.busy import BusyEvent
from ..domain.availability.query import Member
from ..domain.sealing import DataKeys, unseal_text
from ..persistence.tables import MAX_SPAN_SECONDS, accounts, calendars, events, profiles

ALL_DAY_SLACK = timedelta(days=1)  # all-day rows are midnight UTC; local days differ by <1 day
UTC_ZONE = ZoneInfo("Etc/UTC")


class UnknownMember(LookupError):
    """A member the caller may not ask about (unknown, another app's, or not the token's)."""

    def __init__(self, sub: str) -> None:
        super().__init__(sub)
        self.sub = sub


class UnknownMemberCalendar(LookupError):
    """A member's ``calendar_ids`` names a calendar that is not one of theirs."""

    def __init__(self, sub: str, calendar_id: str) -> None:
        super().__init__(calendar_id)
        self.sub = sub
        self.calendar_id = calendar_id


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as the mirror knows them: zone, the calendars that count, and whether
    their busy time can be answered for at all (``unavailable``: why not)."""

    sub: str
    zone: ZoneInfo
    calendars: dict[str, ZoneInfo | None]  # calendar id -> its own zone, if any
    unavailable: str | None = None
    profile_id: str | None = None  # the profile that makes the member unavailable
    generation: int = 0  # the account's mirror generation, read before its busy rows
    longest: int | None = None  # the longest event of the counted calendars (None: unknown)


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (KeyError, ValueError, OSError):
        return None


@dataclass(frozen=True, slots=True)
class _Profile:
    id: str
    connected: bool
    initial_sync_required: bool


@dataclass(frozen=True, slots=True)
class _Calendar:
    id: str
    tzid: str | None
    deleted: bool
    synced_at: datetime | None
    profile_id: str
    longest: int | None  # calendars.max_event_seconds


def read_members(conn: Connection, members: Sequence[Member], client_id: str,
                 only_subject: str | None) -> dict[str, MemberRecord]:
    """Each member's record; :class:`UnknownMember` for one the caller may not name. One
    statement: accounts, their profiles and calendars (outer joins, a row per calendar)."""
    subs = [m.sub for m in members]
    rows = conn.execute(
        select(accounts.c.id, accounts.c.client_id, accounts.c.default_tzid,
               accounts.c.mirror_generation, profiles.c.id.label("profile_id"),
               profiles.c.connected, profiles.c.initial_sync_required,
               calendars.c.id.label("calendar_id"), calendars.c.tzid, calendars.c.deleted,
               calendars.c.synced_at, calendars.c.max_event_seconds)
        .outerjoin(profiles, profiles.c.account_id == accounts.c.id)
        .outerjoin(calendars, calendars.c.profile_id == profiles.c.id)
        .where(accounts.c.id.in_(subs))).all()
    owners = {r.id: r for r in rows}
    for sub in subs:
        row = owners.get(sub)
        if row is None or row.client_id != client_id or only_subject not in (None, sub):
            raise UnknownMember(sub)
    states = {(r.id, r.profile_id): _Profile(r.profile_id, bool(r.connected),
                                             bool(r.initial_sync_required))
              for r in rows if r.profile_id is not None}
    cals = [(r.id, _Calendar(r.calendar_id, r.tzid, bool(r.deleted), r.synced_at,
                             r.profile_id, r.max_event_seconds))
            for r in rows if r.calendar_id is not None]
    return {m.sub: replace(_record(m, owners[m.sub].default_tzid,
                                   [c for sub, c in cals if sub == m.sub],
                                   [p for (sub, _), p in states.items() if sub == m.sub]),
                           generation=int(owners[m.sub].mirror_generation or 0))
            for m in members}


def _record(member: Member, tzid: str | None, cals: list[_Calendar],
            states: list[_Profile]) -> MemberRecord:
    zone = _zone(tzid) or UTC_ZONE
    mine = {c.id: c for c in cals}
    for calendar_id in member.calendar_ids:
        if calendar_id not in mine or mine[calendar_id].deleted:
            raise UnknownMemberCalendar(member.sub, calendar_id)
    chosen = [mine[c] for c in member.calendar_ids] if member.calendar_ids else [
        c for c in cals if not c.deleted]
    counted = {c.id: _zone(c.tzid) for c in chosen}
    if not states:
        return MemberRecord(member.sub, zone, counted, "no_profile")
    # The profiles whose calendars count (all of them when the member names none).
    used = {c.profile_id for c in chosen} if member.calendar_ids else {p.id for p in states}
    for profile in sorted((p for p in states if p.id in used), key=lambda p: p.id):
        if not profile.connected:
            return MemberRecord(member.sub, zone, counted, "profile_disconnected", profile.id)
        if profile.initial_sync_required:
            return MemberRecord(member.sub, zone, counted, "profile_not_synced", profile.id)
    if not counted:
        return MemberRecord(member.sub, zone, counted, "no_calendars")
    for cal in chosen:  # listed, but its events not read yet: its busy time is unknown
        if cal.synced_at is None:
            return MemberRecord(member.sub, zone, counted, "calendar_not_synced",
                                cal.profile_id)
    known = [c.longest for c in chosen if c.longest is not None]
    return MemberRecord(member.sub, zone, counted,
                        longest=max(known) if len(known) == len(chosen) else None)


def longest_of(conn: Connection, ids: list[str]) -> int | None:
    """The longest event of the calendars ``ids`` (None when one of them does not know)."""
    longest = conn.execute(select(calendars.c.max_event_seconds).where(
        calendars.c.id.in_(ids))).scalars().all()
    return None if not longest or None in longest else int(max(longest))


def busy_filter(ids: list[str], start: datetime, end: datetime, tentative_busy: bool,
                longest: int | None) -> list[Any]:
    """The WHERE clauses of rows in ``ids`` that make their owner busy and touch
    ``[start, end)`` (all-day rows with a day's slack): ``busy.counts`` applied in SQL.
    ``longest`` (the longest event there, if known) bounds the start from below, so the
    index range is the window and not all that precedes it."""
    low, high = start - ALL_DAY_SLACK, end + ALL_DAY_SLACK
    where = [events.c.calendar_id.in_(ids), events.c.deleted.is_(False),
             events.c.start_at < high, events.c.end_at > low,
             events.c.status != "cancelled", events.c.transparency != "transparent",
             or_(events.c.participation.is_(None), events.c.participation != "declined")]
    if longest is not None and longest < MAX_SPAN_SECONDS:
        where.append(events.c.start_at >= low - timedelta(seconds=longest))
    if not tentative_busy:
        where += [events.c.status != "tentative", or_(
            events.c.participation.is_(None), events.c.participation != "tentative")]
    return where


def read_busy_rows(conn: Connection, calendar_ids: Iterable[str], start: datetime,
                   end: datetime, tentative_busy: bool) -> list[Any]:
    """Rows that make their owner busy and touch ``[start, end)``, with every column an
    explanation shows (times as datetimes)."""
    ids = list(calendar_ids)
    if not ids:
        return []
    where = busy_filter(ids, start, end, tentative_busy, longest_of(conn, ids))
    return list(conn.execute(select(
        events.c.calendar_id, events.c.event_uid, events.c.start_at,
        events.c.end_at, events.c.all_day, events.c.status, events.c.transparency,
        events.c.participation, events.c.managed_key).where(*where)).all())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite: naive UTC


def events_of(rows: Iterable[Any], record: MemberRecord) -> list[BusyEvent]:
    """The rows as :class:`BusyEvent` values (for an explanation)."""
    return [BusyEvent(r.calendar_id, r.event_uid, _aware(r.start_at), _aware(r.end_at),
                      bool(r.all_day), r.status, r.transparency, r.participation,
                      r.managed_key is not None, record.calendars.get(r.calendar_id))
            for r in rows]


def summaries(conn: Connection, keys: DataKeys, account_id: str,
              wanted: Sequence[tuple[str, str]]) -> dict[str, str]:
    """event_uid -> summary for ``(calendar_id, event_uid)`` pairs, where text is kept."""
    key = keys.key(account_id)
    if key is None or not wanted:
        return {}
    rows = conn.execute(select(events.c.calendar_id, events.c.event_uid,
                               events.c.instance_id, events.c.sealed).where(
        events.c.event_uid.in_([uid for _, uid in wanted]))).all()
    pairs = set(wanted)
    out: dict[str, str] = {}
    for r in rows:
        if (r.calendar_id, r.event_uid) in pairs and r.sealed is not None:
            text = unseal_text(key, r.sealed, f"{r.calendar_id}|{r.instance_id}")
            out[r.event_uid] = text.summary or ""
    return out
