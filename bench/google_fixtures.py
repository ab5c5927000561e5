"""Fixtures for bench/run_google_bench.py: a Google emulator (tests/emulators/google) in the
runner's process holding a 5,000-event calendar, a Calgate data dir with a Google profile
linked to it through the real services, and the emulator's request log read over HTTP.

Events are single (non-recurring) 30-105 minute events, with a description, a location and,
for every fifth one, two attendees; spread evenly over days -40 .. +194 from today, all
inside Calgate's sync window (as in bench/events_fixtures.py, for comparison), plus five
weekly series (one a year long) that Google expands into instances.
"""

from __future__ import annotations

import json
import random
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sync_bench import link

FIRST_DAY = -40
SPAN_DAYS = 235


def sync_window() -> Any:
    """The sync engine's default window for today (days -42 .. +201)."""
    from gateway.sync.engine import SyncSettings

    return SyncSettings().window(datetime.now(UTC))


def event_body(i: int, count: int, day0: datetime, rnd: random.Random) -> dict[str, Any]:
    start = day0 + timedelta(days=FIRST_DAY + SPAN_DAYS * i / count,
                             minutes=rnd.randrange(0, 600, 15))
    end = start + timedelta(minutes=rnd.choice((30, 45, 60, 90, 105)))
    body: dict[str, Any] = {
        "id": f"bench{i:05d}", "summary": f"Meeting {i}",
        "description": f"Agenda for meeting {i}: " + "notes " * rnd.randrange(5, 30),
        "location": f"Room {rnd.randrange(1, 40)}",
        "start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}
    if i % 5 == 0:
        body["attendees"] = [{"email": f"guest{i}@example.org", "displayName": f"Guest {i}"},
                             {"email": f"other{i}@example.org"}]
    return body


def fill(emu: Any, email: str, count: int, day0: datetime) -> None:
    """``count`` events (and five weekly series) in the user's primary calendar."""
    rnd = random.Random(7)
    for i in range(count):
        emu.add_event(email, email, event_body(i, count, day0, rnd))
    for n in range(5):
        start = day0 + timedelta(days=FIRST_DAY + 3 + n, hours=9)
        emu.add_event(email, email, {
            "id": f"series{n}", "summary": f"Weekly {n}",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
                      "timeZone": "Europe/Berlin"},
            "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=52" if n == 0 else "RRULE:FREQ=WEEKLY"]})


def settings_env(data_dir: Path, google_url: str) -> dict[str, str]:
    return {"CALGATE_DATA_DIR": str(data_dir), "CALGATE_GOOGLE_URL": google_url,
            "CALGATE_PUBLIC_URL": "http://127.0.0.1:8080", "CALGATE_LOG_LEVEL": "warning",
            "CALGATE_WORKER_MODE": "external", "CALGATE_PROVIDER_PUSH": "off"}


def link_google(gateway: Any, email: str, credentials: dict[str, str]) -> Any:
    """A client app and a Google profile linked as the consent step would (park + link)."""
    return link(gateway, "google", email, email, credentials, "Google Bench")


class EmulatorLog:
    """The emulator's request log, read over its control API (from any process)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def entries(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base_url}/_emulator/requests",
                                    timeout=30) as answer:
            found: list[dict[str, Any]] = json.loads(answer.read())
        return found

    def names(self) -> list[str]:
        """Upstream requests so far (``events.list``, ``POST /token``), without the control
        API's own."""
        return [e["api_method"] or f"{e['method']} {e['path']}" for e in self.entries()
                if not e["path"].startswith("/_emulator/")]


def change_event(base_url: str, email: str, event_id: str, summary: str) -> None:
    """The owner renames one event in Google (through the emulator's control API)."""
    request = urllib.request.Request(
        f"{base_url}/_emulator/users/{email}/calendars/{email}/events/{event_id}",
        data=json.dumps({"summary": summary}).encode(), method="PATCH",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass
