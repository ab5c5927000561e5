"""Fixtures for bench/run_events_bench.py: calendars written straight into Radicale's storage,
Radicale's request log, and Calgate accounts linked to it through the real services.

Writing 15,000 events through CalDAV one by one takes minutes, so the ``.ics`` files are
written into ``collections/collection-root/<user>/<calendar>/`` (with the calendar's
``.Radicale.props``, as ``RadicaleServer(collections=...)`` does) before Radicale starts.
Radicale then parses each file once, on the first request that lists the calendar, and
keeps the result in its own item cache: :func:`warm` makes that request (a sync-collection
REPORT, which also fills Radicale's sync history) so that no measurement pays for it.

Events are single (non-recurring) 30-105 minute events in UTC (``DTSTART:...Z``), with a
description, a location and, for every fifth one, an organizer and two attendees; they are
spread evenly over days -40 .. +194 from today, all inside Calgate's sync window.
"""

from __future__ import annotations

import base64
import random
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.davservers import RadicaleServer  # noqa: E402

FIRST_DAY = -40  # events start this many days from today ...
SPAN_DAYS = 235  # ... and spread over this many days (the sync window is -42 .. +201)
PASSWORD = "bench-password"
CALENDAR = "calendar"
OWNER_AGENT = "calgate-bench-owner"  # the User-Agent of writes the bench makes upstream
SCOPES = ["read_account", "list_calendars", "read_events", "read_free_busy",
          "create_event", "delete_event"]


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def event_ics(prefix: str, i: int, day0: datetime, rnd: random.Random,
              summary: str | None = None) -> tuple[str, str]:
    """(file name, iCalendar text) of event ``i`` of a calendar."""
    uid = f"{prefix}-{i:05d}"
    start = day0 + timedelta(days=FIRST_DAY + i % SPAN_DAYS, hours=6 + rnd.randrange(14),
                             minutes=15 * rnd.randrange(4))
    end = start + timedelta(minutes=30 + 15 * rnd.randrange(6))
    people = ""
    if i % 5 == 0:
        people = ("ORGANIZER;CN=Olivia Owner:mailto:olivia@example.com\r\n"
                  "ATTENDEE;CN=Ann Attendee;PARTSTAT=ACCEPTED:mailto:ann@example.com\r\n"
                  "ATTENDEE;CN=Bob Attendee;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\r\n")
    lines = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Calgate bench//Events//EN\r\n"
             f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
             f"DTSTART:{_stamp(start)}\r\nDTEND:{_stamp(end)}\r\n"
             f"SUMMARY:{summary or f'Meeting {i} about topic {rnd.randrange(1000)}'}\r\n"
             f"DESCRIPTION:Agenda for meeting {i}: review\\, plan and decide.\r\n"
             f"LOCATION:Room {i % 40}\r\nSTATUS:CONFIRMED\r\n{people}"
             "END:VEVENT\r\nEND:VCALENDAR\r\n")
    return f"{uid}.ics", lines


def calendar_items(prefix: str, count: int, day0: datetime) -> list[tuple[str, str]]:
    rnd = random.Random(prefix)
    return [event_ics(prefix, i, day0, rnd) for i in range(count)]


# -- Radicale ------------------------------------------------------------------------------
_LINE = re.compile(r"^\[[^]]*\] \[(?P<thread>[^]]*)\] \[[A-Z]+\] (?P<method>[A-Z]+) "
                   r"(?P<what>request|response status) for '(?P<path>[^']*)'"
                   r"(?: with depth '(?P<depth>[^']*)')?(?P<rest>.*)$", re.MULTILINE)
_AGENT = re.compile(r" using '([^']*)'")
_STATUS = re.compile(r": (\d{3}) [^:]*$")
_SECONDS = re.compile(r" in (\d+\.\d+) seconds")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    depth: str | None
    agent: str
    status: int | None  # None if Radicale has not logged its answer (yet)
    seconds: float | None  # how long Radicale took to answer, by its own log

    def __str__(self) -> str:
        depth = f" Depth:{self.depth}" if self.depth else ""
        status = f" → {self.status}" if self.status else ""
        took = f" ({1000 * self.seconds:.0f} ms)" if self.seconds is not None else ""
        return f"{self.method} {self.path}{depth}{status}{took}"


class RadicaleLog:
    """Radicale's log at ``--logging-level info``: one line per request received (with its
    User-Agent) and one per answer (with its status), tied together by the thread name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size

    def requests_since(self, offset: int, agent: str = "Calgate") -> list[Request]:
        """Requests logged after ``offset`` whose User-Agent starts with ``agent``.

        Radicale logs "<METHOD> request for ..." when a request arrives and the status
        before it sends the answer, so each request a finished client call made is in the
        log by the time the call returns."""
        with self.path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        open_: dict[str, list[Any]] = {}
        found: list[list[Any]] = []
        for m in _LINE.finditer(text):
            if m["what"] == "request":
                agent_m = _AGENT.search(m["rest"])
                entry = [m["method"], m["path"], m["depth"], agent_m[1] if agent_m else "",
                         None, None]
                open_[m["thread"]] = entry
                found.append(entry)
            elif m["thread"] in open_:
                answered = open_.pop(m["thread"])
                status, took = _STATUS.search(m["rest"]), _SECONDS.search(m["rest"])
                answered[4] = int(status[1]) if status else None
                answered[5] = float(took[1]) if took else None
        return [Request(*e) for e in found if e[3].startswith(agent)]


class BenchRadicale(RadicaleServer):
    """tests.support's Radicale, with the calendars' files written before it starts, its
    storage on tmpfs (/dev/shm, so building Radicale's item cache does not wait for 20,000
    fsyncs) and ``--logging-level info`` so that every request it receives is logged."""

    def __init__(self, calendars: dict[str, list[tuple[str, str]]]) -> None:
        users = {path.split("/")[0]: PASSWORD for path in calendars}
        props = {"tag": "VCALENDAR", "C:supported-calendar-component-set": "VEVENT"}
        super().__init__(users, collections={
            path: {**props, "D:displayname": path.split("/")[0]} for path in calendars},
            items=calendars)
        self.calendars = calendars

    def start(self, timeout: float = 30.0) -> BenchRadicale:
        shm = Path("/dev/shm")
        self.dir = Path(tempfile.mkdtemp(prefix="calgate-bench-radicale-",
                                         dir=shm if shm.is_dir() else None))
        self.prepare()
        self._launch(timeout)
        return self

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("--logging-level") + 1] = "info"
        return command

    @property
    def log(self) -> RadicaleLog:
        return RadicaleLog(self.dir / "server.log")


def auth_header(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


def dav(base: str, user: str, method: str, path: str, body: str = "",
        headers: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, method=method,
                                     data=body.encode() if body else None,
                                     headers={"Authorization": auth_header(user),
                                              "User-Agent": OWNER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


SYNC_ALL = ('<?xml version="1.0" encoding="utf-8"?><sync-collection xmlns="DAV:">'
            '<sync-token/><sync-level>1</sync-level><prop><getetag/></prop>'
            '</sync-collection>')


def warm(base: str, path: str) -> tuple[float, int]:
    """One sync-collection REPORT from an empty token: Radicale parses every item into its
    item cache and records it in its sync history. Returns (seconds, members listed)."""
    began = time.perf_counter()
    status, body = dav(base, path.split("/")[0], "REPORT", f"/{path}/", SYNC_ALL,
                       {"Depth": "0", "Content-Type": "application/xml"})
    if status != 207:
        raise RuntimeError(f"warming {path}: HTTP {status}: {body[:300]!r}")
    return time.perf_counter() - began, body.count(b"<D:href>") + body.count(b"<href>")


def change_event(base: str, path: str, prefix: str, i: int, day0: datetime,
                 summary: str) -> None:
    """The owner edits one event behind Calgate's back (one PUT, as a desktop client)."""
    rnd = random.Random(prefix)  # the same times as the original event i ...
    for _ in range(i):
        event_ics(prefix, _, day0, rnd)
    name, text = event_ics(prefix, i, day0, rnd, summary=summary)  # ... with a new summary
    status, body = dav(base, path.split("/")[0], "PUT", f"/{path}/{name}", text,
                       {"Content-Type": "text/calendar; charset=utf-8"})
    if status not in (200, 201, 204):
        raise RuntimeError(f"changing {name}: HTTP {status}: {body[:300]!r}")


# -- Calgate -------------------------------------------------------------------------------
def settings_env(data_dir: Path, port: int) -> dict[str, str]:
    """The CALGATE_* settings every process of the run uses (the server adds its own)."""
    return {"CALGATE_DATA_DIR": str(data_dir), "CALGATE_PORT": str(port),
            "CALGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", "CALGATE_LOG_LEVEL": "warning",
            "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "CALGATE_WORKER_MODE": "external"}


def open_gateway(env: dict[str, str], migrate_first: bool = False) -> Any:
    from gateway.app import Gateway
    from gateway.persistence.database import migrate
    from gateway.settings import Settings

    settings = Settings.from_env(env)
    if migrate_first:
        migrate(settings.effective_database_url)
    return Gateway.build(settings)


def register_client(gateway: Any) -> str:
    client, _secret = gateway.oauth.registry.create(
        name="Events Bench", redirect_uris=["https://bench.example/cb"], scopes=["read_write"])
    return str(client.client_id)


def link_radicale(gateway: Any, client_id: str, url: str, user: str) -> Any:
    """Link ``user``'s Radicale account as the consent screen would (park + link)."""
    from gateway.services.accounts import PendingAccount

    credentials = {"server_url": url, "username": user, "password": PASSWORD}
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
    return gateway.accounts.link(client_id, PendingAccount(
        "caldav", "caldav", user, f"{url}|{user}", parked), None, SCOPES)


def access_token(gateway: Any, client_id: str, subject: str) -> str:
    """A bearer token for ``subject`` through the real save_code + redeem_code."""
    store = gateway.oauth.store
    code = store.save_code(client_id=client_id, redirect_uri="https://bench.example/cb",
                           scope=" ".join(SCOPES), subject=subject, linking_profile=None,
                           code_challenge=None)
    record = store.find_code(code, client_id)
    assert record is not None
    issued = store.redeem_code(record)
    assert issued is not None
    return str(issued.access_token)


def make_due(gateway: Any, profile_id: str) -> None:
    from sqlalchemy import update

    from gateway.persistence.tables import profiles

    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(next_sync_at=datetime.now(UTC)))


def sync(gateway: Any, profile_id: str) -> Any:
    """One SyncEngine.sync_profile, the way the worker runs it (on an event loop)."""
    import anyio

    make_due(gateway, profile_id)
    outcome = anyio.run(gateway.worker.sync.sync_profile, profile_id)
    if not outcome.ran or outcome.error is not None:
        raise RuntimeError(f"sync of {profile_id} failed: {outcome}")
    return outcome


def mirror_counts(gateway: Any, profile_id: str) -> dict[str, Any]:
    """Live mirror rows and calendar ids of a profile."""
    from sqlalchemy import func, select

    from gateway.persistence.tables import calendars, events

    with gateway.engine.connect() as conn:
        cals = [r[0] for r in conn.execute(select(calendars.c.id).where(
            calendars.c.profile_id == profile_id, calendars.c.deleted.is_(False))).all()]
        rows = conn.execute(select(func.count()).select_from(events).where(
            events.c.calendar_id.in_(cals), events.c.deleted.is_(False))).scalar_one()
    return {"calendar_ids": cals, "events": int(rows)}


def describe(requests: list[Request]) -> str:
    """``PROPFIND /u/ (Depth 0) x2, REPORT /u/calendar/`` in the order first seen."""
    counts = Counter(str(replace(r, seconds=None)) for r in requests)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counts.items())
