"""Contract harness for the Microsoft provider against the Microsoft emulator (one emulator
per test process, a fresh Microsoft 365 mailbox per test) with the Graph permissions the
consent step would ask for every Calgate scope. The owner edits upstream through the
emulator's control API, as they would in Outlook; events the owner makes are named by the
contract's ids (Graph picks ids itself; the control API lets a test choose them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from providers.microsoft.config import GraphSettings
from providers.microsoft.provider import GraphProvider, open_account
from providers.microsoft.scopes import SCOPE_TABLE, graph_scopes
from providers.registry import ProviderOptions
from tests.emulators.microsoft import MicrosoftEmulator
from tests.emulators.microsoft.events import occurrence_id
from tests.emulators.microsoft.shared import CLIENT_ID, CLIENT_SECRET, new_email, shared_emulator

SCOPES = graph_scopes(rule.calgate_scope for rule in SCOPE_TABLE)
BERLIN = "W. Europe Standard Time"  # Outlook names zones the Windows way
# Mondays 09:00 Berlin from 2027-03-01: the 03-08 occurrence is cancelled and the 03-22
# one moved to 14:00; occurrences are named by their original start (09:00 CET = 08:00Z).
CANCELLED = datetime.fromisoformat("2027-03-08T08:00:00+00:00")
MOVED = datetime.fromisoformat("2027-03-22T08:00:00+00:00")


def options_for(emu: MicrosoftEmulator) -> ProviderOptions:
    return ProviderOptions(timeout=10, settings={"office365": GraphSettings.from_values({
        "authority_base": emu.base_url, "graph_base": emu.base_url,
        "ca_bundle": str(emu.ca_path), "retry_max_wait_seconds": "2"})})


def credentials_for(emu: MicrosoftEmulator, email: str) -> dict[str, str]:
    """The secrets linking would store for ``email`` (what msal's answer gives)."""
    user = emu.user(email)
    return {"refresh_token": emu.issue_refresh_token(email, CLIENT_ID, SCOPES),
            "account_id": f"{user['oid']}.{user['tid']}", "tenant": user["tid"],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "scopes": " ".join(SCOPES)}


class PerCall:
    """The provider as the gateway uses it: opened for one job (here, one call) and closed
    after it. The suite runs each call in an event loop of its own (``aio.run``), and a
    provider's connection pool belongs to the loop that used it."""

    name = GraphProvider.name
    capabilities = GraphProvider.capabilities

    def __init__(self, opener: Callable[[], GraphProvider]) -> None:
        self.opener = opener

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            provider = self.opener()
            try:
                return await getattr(provider, method)(*args, **kwargs)
            finally:
                await provider.close()
        return call


def local(moment: str) -> dict[str, str]:
    return {"dateTime": moment, "timeZone": BERLIN}


def utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@dataclass
class MicrosoftHarness:
    emu: MicrosoftEmulator
    email: str
    provider: PerCall
    calendar_id: str
    name: str = "microsoft"
    writable: bool = True

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        self.emu.add_event(self.email, {
            "subject": summary, "start": utc(start), "end": utc(start + duration),
            "showAs": "free" if transparent else "busy"}, self.calendar_id, event_id=uid)

    def upstream_rename(self, uid: str, summary: str) -> None:
        self.emu.update_event(self.email, uid, {"subject": summary})

    def upstream_remove(self, uid: str) -> None:
        self.emu.delete_event(self.email, uid)

    def upstream_add_series(self, uid: str) -> None:
        self.emu.add_event(self.email, {
            "subject": "Weekly", "start": local("2027-03-01T09:00:00"),
            "end": local("2027-03-01T10:00:00"),
            "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                       "daysOfWeek": ["monday"]},
                           "range": {"type": "noEnd", "startDate": "2027-03-01"}}},
            self.calendar_id, event_id=uid)
        # The owner cancels one occurrence and moves another: Outlook makes the moved one
        # an exception of the series.
        self.emu.delete_event(self.email, occurrence_id(uid, CANCELLED))
        self.emu.update_event(self.email, occurrence_id(uid, MOVED), {
            "start": local("2027-03-22T14:00:00"), "end": local("2027-03-22T15:00:00")})


@contextmanager
def harness() -> Iterator[MicrosoftHarness]:
    emu = shared_emulator()
    email = new_email()
    calendar_id = emu.add_user(email, tz="Europe/Berlin")
    credentials, options = credentials_for(emu, email), options_for(emu)
    provider = PerCall(lambda: open_account(credentials, options))
    yield MicrosoftHarness(emu, email, provider, calendar_id)
