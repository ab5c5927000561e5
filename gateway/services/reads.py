"""Reading the mirror: an account's events and free/busy blocks (API.md s5, s7).

Never a live upstream call: everything comes from the mirror the sync engine keeps. Pages
hold 100 items in a stable order (start, row id) and continue by keyset, so a sync that
lands between two pages neither repeats nor skips what was already delivered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Select, and_, func, null, or_, select

from providers.plugin import Conferencing
from providers.registry import find_entry

from ..domain.external import PERMISSION_UNRESTRICTED
from ..domain.managed import managed_key
from ..domain.mirror import series_identifier
from ..domain.sealing import DataKeys, EventText, unseal_text
from ..persistence.generation import read_generation
from ..persistence.tables import (
    MAX_SPAN_SECONDS,
    calendars,
    events,
    external_writes,
    managed_events,
    profiles,
)

PAGE_SIZE = 100
CalendarAccess = Literal["readonly", "sandbox", "unrestricted"]
Key = tuple[datetime, int]  # (start_at, row id): where the next page continues


class UnknownCalendar(LookupError):
    """A requested calendar is not one of this account's."""


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """A resolved read: the window is always concrete (UTC), so later pages see the same."""

    tzid: str
    start: datetime  # items must end after this (or start at/after it)
    end: datetime  # items must start before this (exclusive)
    default_window: bool  # neither from nor to given: managed events ignore the window
    last_modified: datetime | None = None
    include_deleted: bool = False
    include_moved: bool = False
    include_managed: bool = False
    only_managed: bool = False
    calendar_ids: tuple[str, ...] = ()
    localized_times: bool = False
    include_geo: bool = False  # location.lat / location.long where the event has them
    include_ids: bool = False  # free/busy: each block's event_uid (and event_id if managed)
    include_free: bool = False  # free/busy: transparent events too, as ``free`` blocks
    extras: tuple[str, ...] = ()  # provider-declared read extras asked for, by flag

    @classmethod
    def build(cls, tzid: str, start: datetime | None, end: datetime | None, *,
              days_back: int, days_ahead: int, now: datetime | None = None,
              **flags: Any) -> ReadQuery:
        """Fill a missing ``from``/``to`` with the sync window, counted in days of ``tzid``."""
        today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tzid)).date()

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), ZoneInfo(tzid)).astimezone(UTC)

        return cls(tzid, start or midnight(today - timedelta(days=days_back)),
                   end or midnight(today + timedelta(days=days_ahead)),
                   default_window=start is None and end is None, **flags)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("start", "end", "last_modified"):
            data[name] = data[name] and data[name].isoformat()
        data["calendar_ids"] = list(self.calendar_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadQuery:
        """The inverse of :meth:`to_dict`; raises ValueError/TypeError/KeyError if malformed."""
        values = dict(data)
        for name in ("start", "end", "last_modified"):
            values[name] = values[name] and datetime.fromisoformat(values[name])
        values["calendar_ids"] = tuple(values["calendar_ids"])
        values["extras"] = tuple(values.get("extras") or ())  # pages sealed before extras
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    current: int
    total: int
    after: Key | None  # set iff another page follows


class ReadService:
    """Events and free/busy blocks of one account, straight from the mirror."""

    def __init__(self, engine: Engine, keys: DataKeys) -> None:
        self.engine = engine
        self.keys = keys

    def events(self, subject: str, query: ReadQuery, *, text: bool, page: int = 1,
               after: Key | None = None) -> Page:
        """A page of events; ``text``: the token may see summaries of non-managed events."""
        rows, total, readonly = self._page(subject, query, _filters(query), page, after,
                                           managed=query.include_managed
                                           or query.only_managed)
        key = self.keys.key(subject)
        return Page([event_body(r, _text(key, r), text, query, readonly[r.calendar_id])
                     for r in rows], page, total, _after(rows, page, total))

    def free_busy(self, subject: str, query: ReadQuery, *, page: int = 1,
                  after: Key | None = None) -> Page:
        query = replace(query, include_deleted=False, last_modified=None)
        shown = ("opaque", "transparent") if query.include_free else ("opaque",)
        busy = [*_filters(query), events.c.status != "cancelled",
                events.c.transparency.in_(shown)]
        rows, total, _ = self._page(subject, query, busy, page, after,
                                    managed=query.include_ids and query.include_managed)
        return Page([block_body(r, query) for r in rows], page, total,
                    _after(rows, page, total))

    def generation(self, subject: str) -> int | None:
        """The account's mirror generation (what cached pages are keyed on)."""
        with self.engine.connect() as conn:
            return read_generation(conn, subject)

    def managed_event(self, subject: str, calendar_id: str, event_id: str
                      ) -> dict[str, Any] | None:
        """A client's own event as /v1/events shows it (the answer to ``Prefer: wait``)."""
        key = managed_key(subject, calendar_id, event_id)
        with self.engine.connect() as conn:
            row = conn.execute(_columns(True).select_from(_JOINED).add_columns(
                calendars.c.readonly.label("calendar_readonly"),
                calendars.c.permission_level).where(
                profiles.c.account_id == subject, events.c.calendar_id == calendar_id,
                events.c.managed_key == key, events.c.deleted.is_(False))
                .order_by(events.c.start_at)).first()  # a series: its first occurrence
        if row is None:
            return None
        query = ReadQuery("Etc/UTC", row.start_at, row.end_at, default_window=True)
        return event_body(row, _text(self.keys.key(subject), row), False, query,
                          _access(row.calendar_readonly, row.permission_level))

    def _page(self, subject: str, query: ReadQuery, where: list[ColumnElement[bool]],
              page: int, after: Key | None, *, managed: bool
              ) -> tuple[list[Any], int, dict[str, CalendarAccess]]:
        with self.engine.connect() as conn:
            count, rows_of, live = statements(conn, subject, query, where, after,
                                              managed=managed)
            if count is None or rows_of is None:
                return [], page, live
            left = conn.execute(count).scalar_one()
            rows = list(conn.execute(rows_of).all())
        # Counted from here on, so ``total`` stays right even if a sync changed earlier pages.
        return rows, page - 1 + max(1, -(-left // PAGE_SIZE)), live


def statements(conn: Any, subject: str, query: ReadQuery, where: list[ColumnElement[bool]],
               after: Key | None, *, managed: bool
               ) -> tuple[Select[Any] | None, Select[Any] | None, dict[str, CalendarAccess]]:
    """(count of what is left, the page's rows, live calendar id -> access) for a read;
    the statements are None when the read covers no live calendar."""
    live, span = _calendars(conn, subject, query)
    if not live:
        return None, None, live
    where = [events.c.calendar_id.in_(list(live)), *where]
    lower = _lower_bound(query, span)
    if lower is not None:
        where.append(events.c.start_at >= lower)
    if after is not None:
        where.append(or_(events.c.start_at > after[0],
                         and_(events.c.start_at == after[0], events.c.id > after[1])))
    count = select(func.count()).select_from(events).where(*where)
    rows = (_columns(managed).where(*where).order_by(events.c.start_at, events.c.id)
            .limit(PAGE_SIZE))
    return count, rows, live


_JOINED = (events.join(calendars, calendars.c.id == events.c.calendar_id)
           .join(profiles, profiles.c.id == calendars.c.profile_id))
_MINE = (managed_events.c.calendar_id == events.c.calendar_id,
         managed_events.c.managed_key == events.c.managed_key)


def _managed(column: ColumnElement[Any], name: str) -> Any:
    return select(column).where(*_MINE).limit(1).scalar_subquery().label(name)


# Whose event it is: a meeting link is recognised by the provider that made it.
_PROVIDER = (select(profiles.c.provider_name)
             .join(calendars, calendars.c.profile_id == profiles.c.id)
             .where(calendars.c.id == events.c.calendar_id)
             .scalar_subquery().label("provider_name"))
_THEIRS = (external_writes.c.calendar_id == events.c.calendar_id,
           external_writes.c.event_uid == events.c.event_uid)


def _external(column: ColumnElement[Any], name: str) -> Any:
    """How the app's latest write to an external event stands (``event_uid`` writes)."""
    return select(column).where(*_THEIRS).limit(1).scalar_subquery().label(name)


_EXTERNAL_WRITE = (
    _external(external_writes.c.version - external_writes.c.applied_version,
              "external_behind"),
    _external(external_writes.c.last_error, "external_error"))
_WITH_EVENT_ID = select(
    events, _managed(managed_events.c.event_id, "event_id"),
    _managed(managed_events.c.version - managed_events.c.applied_version, "write_behind"),
    _managed(managed_events.c.last_error, "write_error"), _PROVIDER, *_EXTERNAL_WRITE)
_WITHOUT_EVENT_ID = select(events, null().label("event_id"), null().label("write_behind"),
                           null().label("write_error"), _PROVIDER, *_EXTERNAL_WRITE)


def _columns(managed: bool) -> Select[Any]:
    """Event rows; the client's ``event_id`` is looked up only where managed rows can show."""
    return _WITH_EVENT_ID if managed else _WITHOUT_EVENT_ID


def _calendars(conn: Any, subject: str, query: ReadQuery
               ) -> tuple[dict[str, CalendarAccess], timedelta | None]:
    """The live calendars the read covers (id -> access) and the longest event in any of
    them (None when not known); :class:`UnknownCalendar` for a requested one that is not the
    account's."""
    rows = conn.execute(
        select(calendars.c.id, calendars.c.readonly, calendars.c.deleted,
               calendars.c.max_event_seconds, calendars.c.permission_level)
        .join(profiles, profiles.c.id == calendars.c.profile_id)
        .where(profiles.c.account_id == subject)).all()
    if query.calendar_ids:
        mine = {r.id for r in rows}
        for calendar_id in query.calendar_ids:
            if calendar_id not in mine:
                raise UnknownCalendar(calendar_id)
        wanted = set(query.calendar_ids)
        rows = [r for r in rows if r.id in wanted]
    live = [r for r in rows if not r.deleted]
    spans = [r.max_event_seconds for r in live]
    longest = None if None in spans else max(spans, default=0)
    # An event as long as the column holds may be longer still: no lower bound then.
    span = None if longest is None or longest >= MAX_SPAN_SECONDS else timedelta(
        seconds=longest)
    return {r.id: _access(r.readonly, r.permission_level) for r in live}, span


def _access(readonly: bool, permission_level: str | None) -> CalendarAccess:
    """What the app may do to events in a calendar: nothing (read-only), its own events
    (sandbox), or every event (unrestricted: the user approved elevated permissions)."""
    if readonly:
        return "readonly"
    return "unrestricted" if permission_level == PERMISSION_UNRESTRICTED else "sandbox"


def _lower_bound(query: ReadQuery, span: timedelta | None) -> datetime | None:
    """The earliest ``start_at`` an event overlapping the window can have, when the read is
    limited by the window at all. A day of slack covers all-day rows, which are compared
    against the window's wall-clock times (at most 14 hours from UTC)."""
    if span is None or (query.include_moved and query.last_modified is not None):
        return None
    if query.default_window and (query.include_managed or query.only_managed):
        return None  # managed events ignore the default window
    try:
        return query.start - span - timedelta(days=1)
    except OverflowError:  # an event longer than all time before the window: no bound
        return None


def _filters(query: ReadQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.only_managed:
        where.append(events.c.managed_key.is_not(None))
    elif not query.include_managed:
        where.append(events.c.managed_key.is_(None))
    if not query.include_deleted:
        where.append(events.c.deleted.is_(False))
    if query.last_modified is not None:
        where.append(events.c.updated >= query.last_modified)
    if query.include_moved and query.last_modified is not None:
        # The mirror keeps an event that moved as its row with the new times and a fresh
        # ``updated``: "ever inside the window since last_modified" is every changed row.
        return where
    window = _window(query)
    if query.default_window:  # managed events are not limited by the default window
        window = or_(events.c.managed_key.is_not(None), window)
    where.append(window)
    return where


def _window(query: ReadQuery) -> ColumnElement[bool]:
    """Overlap with [start, end); all-day rows (midnight UTC dates) against the wall-clock
    window in ``tzid``, so a date means the same day whatever the offset."""
    zone = ZoneInfo(query.tzid)

    def floating(value: datetime) -> datetime:
        return value.astimezone(zone).replace(tzinfo=UTC)

    def overlaps(start: datetime, end: datetime) -> ColumnElement[bool]:
        # ``start_at >= start`` keeps zero-length events that sit exactly on ``start``.
        return and_(events.c.start_at < end,
                    or_(events.c.end_at > start, events.c.start_at >= start))

    return or_(and_(events.c.all_day.is_(False), overlaps(query.start, query.end)),
               and_(events.c.all_day.is_(True),
                    overlaps(floating(query.start), floating(query.end))))


def _after(rows: list[Any], page: int, total: int) -> Key | None:
    if page >= total or not rows:
        return None
    return _aware(rows[-1].start_at), int(rows[-1].id)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value the mirror stores is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(key: bytes | None, row: Any) -> EventText | None:
    if key is None or row.sealed is None:
        return None
    return unseal_text(key, row.sealed, f"{row.calendar_id}|{row.instance_id}")


# -- the wire shapes (API.md s5.2 and s7) -------------------------------------------------

def utc_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; naive values are UTC (SQLite hands them back naive)."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:19] + "Z"


def _when(value: datetime, all_day: bool, tzid: str | None, query: ReadQuery) -> Any:
    if all_day:
        day = _aware(value).date().isoformat()
        return {"time": day, "tzid": _zone_name(tzid, query)} if query.localized_times else day
    if not query.localized_times:
        return utc_time(value)
    zone = _zone_name(tzid, query)
    try:
        local = _aware(value).astimezone(ZoneInfo(zone))
    except OverflowError:  # a row at the edge of datetime's range (year 1 or 9999): in UTC
        return {"time": _aware(value).isoformat(timespec="seconds"), "tzid": "Etc/UTC"}
    return {"time": local.isoformat(timespec="seconds"), "tzid": zone}


def _zone_name(tzid: str | None, query: ReadQuery) -> str:
    """The event's own zone when it has a valid one, else the request's ``tzid``."""
    if tzid:
        try:
            ZoneInfo(tzid)
        except (KeyError, ValueError, OSError):
            return query.tzid
        return tzid
    return query.tzid


def _recognise_meeting(row: Any, url: str) -> Conferencing | None:
    entry = find_entry(row.provider_name or "")
    return None if entry is None else entry.recognise_meeting(url)


def event_body(row: Any, text: EventText | None, show_text: bool,
               query: ReadQuery, access: CalendarAccess) -> dict[str, Any]:
    managed = row.managed_key is not None
    visible = text if (show_text or managed) else None
    body: dict[str, Any] = {"calendar_id": row.calendar_id, "event_uid": row.event_uid}
    if managed and row.event_id is not None:
        body["event_id"] = row.event_id
        write = write_state(row.write_behind, row.write_error)
        if write is not None:
            body["calgate_write"] = write
    elif not managed:  # the app's own writes to an external event (event_uid)
        write = write_state(row.external_behind, row.external_error)
        if write is not None:
            body["calgate_write"] = write
    if visible is not None:
        body |= {"summary": visible.summary or "", "description": visible.description or ""}
        if visible.location or (query.include_geo and visible.geo):
            body["location"] = {"description": visible.location or ""}
            if query.include_geo and visible.geo:
                body["location"] |= {"lat": visible.geo[0], "long": visible.geo[1]}
        if visible.url:
            body["url"] = visible.url
        if visible.meeting_url:
            body["meeting_url"] = visible.meeting_url
            meeting = _recognise_meeting(row, visible.meeting_url)
            if visible.conference_name:  # the app's own link, as it named it
                meeting = Conferencing(visible.conference_name, visible.meeting_url)
            if meeting is not None:
                body["conferencing"] = {"provider_name": meeting.provider_name,
                                        "join_url": meeting.join_url}
    body |= {"start": _when(row.start_at, row.all_day, row.start_tzid, query),
             "end": _when(row.end_at, row.all_day, row.end_tzid, query),
             "deleted": bool(row.deleted), "created": utc_time(row.created),
             "updated": utc_time(row.updated)}
    participation = (visible.participation_status if visible else None) or "unknown"
    body["participation_status"] = participation
    if visible is not None:
        body["attendees"] = [p.to_stored() for p in visible.attendees]
        organizer = visible.organizer
        if organizer:
            body["organizer"] = {"email": organizer.email,
                                 "display_name": organizer.display_name}
    writable = access != "readonly" and not row.deleted
    # External events: only with elevated permissions, and never an instance of a series.
    editable = writable and (managed or (access == "unrestricted" and not row.recurring))
    body["transparency"] = row.transparency
    extended = (visible.extended_transparency if visible else None) or row.transparency
    if extended != "unknown":
        body["extended_transparency"] = extended
    if visible is not None and visible.reminders is not None:
        body["reminders"] = [{"minutes": m} for m in visible.reminders]
    body |= {"status": row.status,
             "categories": list(visible.categories) if visible else [],
             "recurring": bool(row.recurring), "event_private": bool(row.private),
             "options": {"delete": editable, "update": editable,
                         "change_participation_status": writable and not managed
                         and participation != "unknown"}}
    if row.recurring:  # the occurrences of one series share it
        body["series_identifier"] = series_identifier(row.calendar_id, row.resource_id)
    if query.extras:  # fields the event's provider declares for the flags asked
        entry = find_entry(row.provider_name or "")
        if entry is not None:
            body |= entry.extra_fields(query.extras, row.resource_id, row.instance_id)
    return body


def write_state(behind: int | None, error: str | None) -> dict[str, str] | None:
    """Calgate's extension on a managed event (never a Cronofy field): how its latest write
    stands upstream, absent once applied. ``pending``: not tried yet; ``retrying``: failed
    for a passing reason (an outage, a rate limit) and due again; ``failed``: refused for
    good (the mirror keeps what the upstream last had); ``error`` says why."""
    if error is None:
        return {"status": "pending"} if behind else None
    return {"status": "retrying" if behind else "failed", "error": error}


def block_body(row: Any, query: ReadQuery) -> dict[str, Any]:
    body = {"calendar_id": row.calendar_id,
            "start": _when(row.start_at, row.all_day, row.start_tzid, query),
            "end": _when(row.end_at, row.all_day, row.end_tzid, query),
            "free_busy_status": _block_status(row)}
    if query.include_ids:  # the C# SDK's FreeBusy.EventUid / EventId
        body["event_uid"] = row.event_uid
        if row.managed_key is not None and row.event_id is not None:
            body["event_id"] = row.event_id
    return body


def _block_status(row: Any) -> str:
    if row.transparency == "transparent":  # only read with include_free
        return "free"
    return "tentative" if row.status == "tentative" else "busy"


__all__ = ["PAGE_SIZE", "Page", "ReadQuery", "ReadService", "UnknownCalendar"]
