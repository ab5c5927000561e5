"""Synthetic accounts for bench/run_scale_bench.py: Radicale users with one small calendar
each, owner edits straight to Radicale, and the read request the API is loaded with.

Each of the N users ``u00000``… has one calendar (``calendar``) of ``events`` single
45-minute events in UTC spread over days -7 .. +21 from today (inside the sync window), so
a 7-day read window from today holds about a quarter of them. The ``.ics`` files are
written into Radicale's storage before it starts (bench/events_fixtures.py's
``BenchRadicale``: tmpfs storage, every request logged with its User-Agent).
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import events_fixtures as fx

SPREAD_DAYS = 28  # events cover days -7 .. +21
FIRST_DAY = -7


def user_name(n: int) -> str:
    return f"u{n:05d}"


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def event_ics(user: str, i: int, count: int, day0: datetime, summary: str | None = None
              ) -> tuple[str, str]:
    """(file name, iCalendar text) of event ``i`` of ``user``'s calendar."""
    uid = f"{user}-{i:03d}"
    start = day0 + timedelta(days=FIRST_DAY + i * SPREAD_DAYS // count, hours=8 + i % 9)
    stamp = "%Y%m%dT%H%M%SZ"
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Calgate bench//Scale//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:{start.strftime(stamp)}\r\n"
            f"DTEND:{(start + timedelta(minutes=45)).strftime(stamp)}\r\n"
            f"SUMMARY:{summary or f'Meeting {i} of {user}'}\r\n"
            f"LOCATION:Room {i % 12}\r\nSTATUS:CONFIRMED\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    return f"{uid}.ics", text


def calendars(accounts: int, events: int, day0: datetime) -> dict[str, list[tuple[str, str]]]:
    return {f"{user_name(n)}/{fx.CALENDAR}": [event_ics(user_name(n), i, events, day0)
                                             for i in range(events)]
            for n in range(accounts)}


# Radicale listens with socketserver's backlog of 5 connections, which it has no option
# for; this starts it with a longer one.
_BACKLOG = ("import runpy, socketserver; socketserver.TCPServer.request_queue_size = {n}; "
            "runpy.run_module('radicale', run_name='__main__', alter_sys=True)")


class ScaleRadicale(fx.BenchRadicale):
    """``BenchRadicale`` taking ``max_connections`` connections at once, with a listen
    backlog as long. Radicale's defaults (8 connections, and socketserver's backlog of 5
    behind them) are a small home server's: the two workers open up to 80 connections at
    once (40 sync threads each), and under that load connections beyond the backlog hang
    or are dropped ("Remote end closed connection without response"), so syncs fail. The
    hosted CalDAV services Calgate's users sit on take far more, so this upstream does."""

    def __init__(self, calendars: dict[str, list[tuple[str, str]]],
                 max_connections: int) -> None:
        super().__init__(calendars)
        self.max_connections = max_connections

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("radicale")  # [python, -m, radicale, options...]
        return [*command[:at - 1], "-c", _BACKLOG.format(n=self.max_connections),
                *command[at + 1:], "--server-max-connections", str(self.max_connections)]


def start_radicale(accounts: int, events: int, day0: datetime,
                   max_connections: int) -> ScaleRadicale:
    return ScaleRadicale(calendars(accounts, events, day0), max_connections).start(
        timeout=120)


def owner_changes(base: str, accounts: int, events: int, changes: int, day0: datetime,
                  seed: int, threads: int = 4) -> list[str]:
    """``changes`` owners (distinct accounts, drawn at random) each rename one event with
    one PUT, as a desktop client would. Returns the users changed."""
    rnd = random.Random(seed)
    picked = rnd.sample(range(accounts), min(changes, accounts))
    jobs = [(user_name(n), rnd.randrange(events)) for n in picked]

    def put(job: tuple[str, int]) -> str:
        user, i = job
        name, text = event_ics(user, i, events, day0, summary=f"Renamed {seed}-{i} by {user}")
        status, body = fx.dav(base, user, "PUT", f"/{user}/{fx.CALENDAR}/{name}", text,
                              {"Content-Type": "text/calendar; charset=utf-8"})
        if status not in (200, 201, 204):
            raise RuntimeError(f"PUT {user}/{name}: HTTP {status}: {body[:300]!r}")
        return user

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(put, jobs))


def link_all(deployment: Any, client_id: str, url: str, accounts: int,
             log: Any) -> list[Any]:
    """Link every Radicale user as the consent step would (park + link), in order."""
    linked = []
    for n in range(accounts):
        user = user_name(n)
        linked.append(deployment.link(client_id, "caldav", user, f"{url}|{user}", {
            "server_url": url, "username": user, "password": fx.PASSWORD}))
        if (n + 1) % 500 == 0:
            log(f"linked {n + 1} of {accounts}")
    return linked


def events_path(calendar_id: str, day0: datetime, days: int = 7) -> str:
    """The events benchmark's request: tzid, a ``days``-day window from today, one calendar."""
    query = urlencode({"tzid": "Etc/UTC", "from": day0.date().isoformat(),
                       "to": (day0 + timedelta(days=days)).date().isoformat(),
                       "calendar_ids[]": calendar_id})
    return f"/v1/events?{query}"
