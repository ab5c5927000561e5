"""The data of bench/run_availability_bench.py: the members' calendars, the question, and the
same calendars as iCalendar files (for Radicale) and as Google event resources (for the
Google emulator).

Every member's calendar holds ``events`` events (500 by default) over the 4 weeks the
question asks about, drawn with a seeded random generator per member, so every run and
every store (Radicale, the Google emulator, Calgate's mirror) holds the same events:

- meetings on weekdays in working hours (08:00-18:00 UTC), 30-90 minutes, starting on a
  quarter hour, overlapping freely (double bookings happen);
- tentative meetings (busy for availability), transparent blocks ("focus time" shown as
  free, which never count) and cancelled meetings (never count) in working hours;
- events outside working hours (early mornings, evenings, weekends), which count as busy
  but fall outside the query periods;
- all-day events: a few busy (out of office), more transparent (birthdays, holidays).

The first events of each calendar take each kind once, so that a tiny calendar (the test's
10 events) still holds every kind; the rest are drawn with :data:`MIX`'s weights.
Everything is in UTC, so an all-day event means the same day in every store.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Kind = Literal["busy", "tentative", "transparent", "cancelled", "outside", "allday_busy",
               "allday_free"]
# Weights per 500 events: 100 + 15 + 60 + 10 + 305 + 2 + 8. About 5.75 meetings that count
# per member and working day leave a member free about half of working hours, and the
# default question (bench/run_availability_bench.py) a few dozen non-overlapping slots.
MIX: dict[Kind, int] = {"busy": 100, "tentative": 15, "transparent": 60, "cancelled": 10,
                        "outside": 305, "allday_busy": 2, "allday_free": 8}
DAYS = 28
WORK_START, WORK_END = 8, 18  # UTC hours of the query periods
DURATIONS = (30, 45, 60, 75, 90)  # minutes


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a member's calendar, as every store gets it."""

    uid: str
    kind: Kind
    start: datetime  # an all-day event: midnight UTC of its day
    end: datetime

    @property
    def all_day(self) -> bool:
        return self.kind.startswith("allday")

    @property
    def counts(self) -> bool:
        """Whether availability must treat it as busy (tentative counts by default)."""
        return self.kind in ("busy", "tentative", "outside", "allday_busy")


@dataclass(frozen=True, slots=True)
class Group:
    """A participants group: its members (subs, or user names before linking) and how
    many must be free (``"all"`` or a number)."""

    members: tuple[str, ...]
    required: int | Literal["all"]


@dataclass(frozen=True, slots=True)
class Question:
    """The availability question every method answers: groups, query periods, a slot
    duration and start interval, slots only, at most ``max_results`` slots."""

    groups: tuple[Group, ...]
    periods: tuple[tuple[datetime, datetime], ...]
    duration: timedelta = timedelta(minutes=60)
    interval: timedelta = timedelta(minutes=15)
    max_results: int = 512

    @property
    def span(self) -> tuple[datetime, datetime]:
        return self.periods[0][0], self.periods[-1][1]

    def renamed(self, subs: dict[str, str]) -> Question:
        """The same question with members renamed (user name -> Calgate ``sub``)."""
        groups = tuple(Group(tuple(subs[m] for m in g.members), g.required)
                       for g in self.groups)
        return Question(groups, self.periods, self.duration, self.interval, self.max_results)

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/availability`` request (Cronofy's shape)."""
        return {
            "participants": [{"members": [{"sub": m} for m in g.members],
                              "required": g.required} for g in self.groups],
            "required_duration": {"minutes": self.duration // timedelta(minutes=1)},
            "query_periods": [{"start": wire(s), "end": wire(e)} for s, e in self.periods],
            "start_interval": {"minutes": self.interval // timedelta(minutes=1)},
            "response_format": "slots",
            "max_results": self.max_results}


def wire(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_day(now: datetime | None = None) -> datetime:
    """Midnight UTC of the Monday the 4 weeks begin (at least 2 days ahead, so the whole
    question is in the future whenever the run happens)."""
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    ahead = today + timedelta(days=2)
    return ahead + timedelta(days=(7 - ahead.weekday()) % 7)


def users(count: int) -> list[str]:
    return [f"member{n:02d}" for n in range(count)]


def question(names: list[str], day0: datetime, days: int = DAYS) -> Question:
    """The weekday working hours of ``days`` days; a panel of the first ``len // 5`` (at
    least 1) members who must all be free, and a pool of the others of whom 2 (or all, if
    fewer) must be free."""
    periods = tuple((day0 + timedelta(days=d, hours=WORK_START),
                     day0 + timedelta(days=d, hours=WORK_END))
                    for d in range(days) if (day0 + timedelta(days=d)).weekday() < 5)
    panel = max(1, len(names) // 5)
    pool = tuple(names[panel:])
    groups = [Group(tuple(names[:panel]), "all")]
    if pool:
        groups.append(Group(pool, 2 if len(pool) > 2 else "all"))
    return Question(tuple(groups), periods)


def calendar(user: str, count: int, day0: datetime, days: int = DAYS) -> list[Event]:
    """A member's ``count`` events over ``days`` days from ``day0``."""
    rnd = random.Random(f"availability-{user}")
    kinds: list[Kind] = list(MIX)[:count]
    kinds += rnd.choices(list(MIX), weights=list(MIX.values()), k=count - len(kinds))
    return [_event(f"{user}-{i:04d}", kind, day0, days, rnd) for i, kind in enumerate(kinds)]


def _event(uid: str, kind: Kind, day0: datetime, days: int, rnd: random.Random) -> Event:
    if kind.startswith("allday"):
        day = day0 + timedelta(days=rnd.randrange(days))
        return Event(uid, kind, day, day + timedelta(days=1))
    weekdays = [d for d in range(days) if (day0 + timedelta(days=d)).weekday() < 5]
    if kind != "outside":
        day = day0 + timedelta(days=rnd.choice(weekdays))
        start = day + timedelta(hours=WORK_START, minutes=15 * rnd.randrange(38))
    elif rnd.random() < 0.3:  # a weekend: daytime
        weekend = [d for d in range(days) if d not in weekdays]
        day = day0 + timedelta(days=rnd.choice(weekend or weekdays))
        start = day + timedelta(hours=8, minutes=15 * rnd.randrange(48))
    else:  # a weekday: early morning or evening
        day = day0 + timedelta(days=rnd.choice(weekdays))
        early = rnd.random() < 0.4
        start = day + (timedelta(hours=6, minutes=15 * rnd.randrange(5)) if early
                       else timedelta(hours=WORK_END, minutes=15 * rnd.randrange(13)))
        # An early one ends by 08:00, so only the meetings count in working hours.
        if early:
            return Event(uid, kind, start, min(start + timedelta(minutes=rnd.choice(
                DURATIONS)), day + timedelta(hours=WORK_START)))
    return Event(uid, kind, start, start + timedelta(minutes=rnd.choice(DURATIONS)))


# -- the same events in each store ---------------------------------------------------------
def _ics_time(name: str, moment: datetime, all_day: bool) -> str:
    if all_day:
        return f"{name};VALUE=DATE:{moment.strftime('%Y%m%d')}\r\n"
    return f"{name}:{moment.strftime('%Y%m%dT%H%M%SZ')}\r\n"


def ics(event: Event) -> str:
    """The event as an iCalendar object (what a CalDAV client would PUT)."""
    status = {"tentative": "TENTATIVE", "cancelled": "CANCELLED"}.get(event.kind, "CONFIRMED")
    transp = "TRANSPARENT" if event.kind in ("transparent", "allday_free") else "OPAQUE"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Calgate bench//Availability//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{event.uid}\r\nDTSTAMP:20260101T000000Z\r\n"
            + _ics_time("DTSTART", event.start, event.all_day)
            + _ics_time("DTEND", event.end, event.all_day)
            + f"SUMMARY:{event.kind.title()} {event.uid}\r\nSTATUS:{status}\r\n"
            f"TRANSP:{transp}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def radicale_items(events: list[Event]) -> list[tuple[str, str]]:
    return [(f"{e.uid}.ics", ics(e)) for e in events]


def google_body(event: Event) -> dict[str, Any] | None:
    """The event as a Google Calendar resource; None for a cancelled one (Google keeps no
    cancelled single event in a listing that counts)."""
    if event.kind == "cancelled":
        return None
    if event.all_day:
        when = ({"date": event.start.strftime("%Y-%m-%d")},
                {"date": event.end.strftime("%Y-%m-%d")})
    else:
        when = ({"dateTime": wire(event.start)}, {"dateTime": wire(event.end)})
    return {"id": event.uid.replace("-", "").replace("member", "m"),
            "summary": f"{event.kind.title()} {event.uid}", "start": when[0], "end": when[1],
            "status": "tentative" if event.kind == "tentative" else "confirmed",
            "transparency": ("transparent" if event.kind in ("transparent", "allday_free")
                             else "opaque")}
