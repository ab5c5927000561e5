"""Contract harness for the Google provider against the Google emulator (one emulator per
test process, a fresh Google user per test), with the least-privilege scopes the consent
step would ask for every Calgate scope. The owner edits upstream through the emulator's
control API, as they would in Google Calendar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from providers.google.config import GoogleSettings
from providers.google.oauth import SCOPE_TABLE, upstream_scopes
from providers.google.provider import GoogleProvider, open_account
from providers.registry import ProviderOptions
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.shared import CLIENT_ID, CLIENT_SECRET, new_email, shared_emulator
from tests.support import aio

SCOPES = upstream_scopes(rule.calgate_scope for rule in SCOPE_TABLE)
FAST_RETRIES = {"retry_base_seconds": "0.005", "retry_max_wait_seconds": "2"}


def options_for(emu: GoogleEmulator, **values: str) -> ProviderOptions:
    """Options pointing at ``emu``; ``values`` are GoogleSettings keys (``retry_attempts``)."""
    return ProviderOptions(timeout=10, settings={"google": GoogleSettings.from_values(
        {**emu.endpoints, **FAST_RETRIES, **values})})


def open_for(emu: GoogleEmulator, email: str, scopes: tuple[str, ...] = SCOPES,
             **extra: str) -> GoogleProvider:
    refresh = emu.issue_refresh_token(email, CLIENT_ID, scopes)
    return open_account({"refresh_token": refresh, "client_id": CLIENT_ID,
                         "client_secret": CLIENT_SECRET}, options_for(emu, **extra))


def timed(start: datetime, duration: timedelta, transparent: bool = False) -> dict[str, object]:
    return {"start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + duration).isoformat()},
            "transparency": "transparent" if transparent else "opaque"}


@dataclass
class GoogleHarness:
    emu: GoogleEmulator
    email: str
    provider: GoogleProvider
    calendar_id: str
    name: str = "google"
    writable: bool = True

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        self.emu.add_event(self.email, self.calendar_id,
                           {"id": uid, "summary": summary, **timed(start, duration, transparent)})

    def upstream_rename(self, uid: str, summary: str) -> None:
        self.emu.update_event(self.email, self.calendar_id, uid, {"summary": summary})

    def upstream_remove(self, uid: str) -> None:
        self.emu.cancel_event(self.email, self.calendar_id, uid)

    def upstream_add_series(self, uid: str) -> None:
        berlin = "Europe/Berlin"
        self.emu.add_event(self.email, self.calendar_id, {
            "id": uid, "summary": "Weekly",
            "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": berlin},
            "end": {"dateTime": "2027-03-01T10:00:00", "timeZone": berlin},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO",
                           "EXDATE;TZID=Europe/Berlin:20270308T090000"]})
        # The owner moves one instance: Google makes it an exception of the series.
        self.emu.update_event(self.email, self.calendar_id, f"{uid}_20270322T080000Z", {
            "start": {"dateTime": "2027-03-22T14:00:00", "timeZone": berlin},
            "end": {"dateTime": "2027-03-22T15:00:00", "timeZone": berlin}})


@contextmanager
def harness() -> Iterator[GoogleHarness]:
    emu = shared_emulator()
    email = emu.add_user(new_email(), tz="Europe/Berlin")
    provider = open_for(emu, email)
    try:
        yield GoogleHarness(emu, email, provider, email)
    finally:
        aio.run(provider.close())
