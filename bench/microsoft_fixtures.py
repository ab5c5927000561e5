"""Fixtures for bench/run_microsoft_bench.py: a Microsoft emulator (tests/emulators/microsoft)
in the runner's process holding a 5,000-event calendar, and a Calgate data dir with Microsoft
365 profiles linked to it through the real sign-in (msal, PKCE) and the real services.

Events are single 30-105 minute events with a body, a location and, for every fifth one, two
attendees, spread evenly over days -40 .. +194 from today (inside Calgate's sync window, as
in bench/google_fixtures.py, for comparison), plus five weekly series (one a year long)
that the calendar view expands into occurrences.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sync_bench import SCOPES
from sync_bench import link as link_profile

FIRST_DAY = -40
SPAN_DAYS = 235
CLIENT_ID, CLIENT_SECRET = "calgate-bench", "calgate-bench-secret"
REDIRECT = "https://bench.example/oauth/callback/office365"


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def event_body(i: int, count: int, day0: datetime, rnd: random.Random) -> dict[str, Any]:
    start = day0 + timedelta(days=FIRST_DAY + SPAN_DAYS * i / count,
                             minutes=rnd.randrange(0, 600, 15))
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=rnd.choice((30, 45, 60, 90, 105)))
    body: dict[str, Any] = {
        "subject": f"Meeting {i}",
        "body": {"contentType": "text",
                 "content": f"Agenda for meeting {i}: " + "notes " * rnd.randrange(5, 30)},
        "location": {"displayName": f"Room {rnd.randrange(1, 40)}"},
        "start": graph_time(start), "end": graph_time(end)}
    if i % 5 == 0:
        body["attendees"] = [
            {"emailAddress": {"address": f"guest{i}@example.org", "name": f"Guest {i}"},
             "type": "required"},
            {"emailAddress": {"address": f"other{i}@example.org"}, "type": "optional"}]
    return body


def series_body(n: int, day0: datetime) -> dict[str, Any]:
    start = day0 + timedelta(days=FIRST_DAY + 3 + n, hours=9)
    weekly: dict[str, Any] = {"type": "weekly", "interval": 1,
                              "daysOfWeek": [start.strftime("%A").lower()],
                              "firstDayOfWeek": "sunday"}
    ends: dict[str, Any] = {"type": "numbered", "numberOfOccurrences": 52} if n == 0 else \
        {"type": "noEnd"}
    return {"subject": f"Weekly {n}", "start": {
        "dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "W. Europe Standard Time"},
        "recurrence": {"pattern": weekly, "range": {
            "startDate": start.date().isoformat(), "recurrenceTimeZone":
            "W. Europe Standard Time", **ends}}}


def fill(emu: Any, email: str, count: int, day0: datetime) -> list[str]:
    """``count`` single events and five weekly series in the mailbox's default calendar;
    the single events' ids, in order, then the series masters' ids."""
    rnd = random.Random(7)
    ids = [emu.add_event(email, event_body(i, count, day0, rnd))["id"] for i in range(count)]
    ids += [emu.add_event(email, series_body(n, day0))["id"] for n in range(5)]
    return ids


def settings_env(data_dir: Path, emu: Any) -> dict[str, str]:
    return {"CALGATE_DATA_DIR": str(data_dir),
            "CALGATE_OFFICE365_AUTHORITY_BASE": emu.base_url,
            "CALGATE_OFFICE365_GRAPH_BASE": emu.base_url,
            "CALGATE_OFFICE365_CA_BUNDLE": str(emu.ca_path),
            "CALGATE_PUBLIC_URL": "http://127.0.0.1:8080", "CALGATE_LOG_LEVEL": "warning",
            "CALGATE_WORKER_MODE": "external", "CALGATE_PROVIDER_PUSH": "off"}


def sign_in(emu: Any, email: str) -> dict[str, str]:
    """The credentials Calgate keeps for ``email``, from the real sign-in: msal's
    authorization code flow with PKCE through the emulator's consent page."""
    import httpx

    from gateway.app import provider_options
    from gateway.settings import Settings
    from providers.microsoft import oauth
    from providers.microsoft.config import settings_of
    from providers.microsoft.scopes import graph_scopes
    from tests.emulators.microsoft.signin import sign_in as consent

    options = provider_options(Settings.from_env(settings_env(Path("/nonexistent"), emu)))
    settings, app = settings_of(options), oauth.EntraApp(CLIENT_ID, CLIENT_SECRET)
    wanted = graph_scopes(SCOPES)
    start = oauth.start_link(settings, app, wanted, REDIRECT)
    with httpx.Client(verify=emu.ca.client_context(), trust_env=False) as browser:
        back = consent(browser, start.url, email)
    grant = oauth.finish_link(settings, app, start.flow, back, wanted)
    secrets: dict[str, str] = grant.secrets.to_mapping()
    return secrets


def link(gateway: Any, email: str, credentials: dict[str, str]) -> Any:
    """A client app and a Microsoft 365 profile linked as the consent step would."""
    return link_profile(gateway, "office365", email, credentials["account_id"], credentials,
                        "Microsoft Bench")
