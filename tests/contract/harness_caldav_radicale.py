"""Contract harness for the CalDAV provider against a real Radicale (one server per test
process, a fresh calendar per test). The owner edits upstream with the plain caldav
library. ``caldav_harness`` is shared with the Xandikos harness."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from providers.caldav.provider import CalDavProvider, open_account
from providers.registry import ProviderOptions
from tests.support import aio
from tests.support.davservers import SHARED_USERS, DavOwner, shared_radicale, weekly_series
from tests.support.outbound import LOOPBACK

# The test servers listen on loopback, which production refuses (SSRF).
OPTIONS = ProviderOptions(timeout=10, outbound=LOOPBACK)


@dataclass
class CalDavHarness:
    name: str
    provider: CalDavProvider
    calendar_id: str
    owner: DavOwner
    writable: bool = True

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        self.owner.add(self.calendar_id, uid, summary, start, duration, transparent)

    def upstream_rename(self, uid: str, summary: str) -> None:
        self.owner.rename(self.calendar_id, uid, summary)

    def upstream_remove(self, uid: str) -> None:
        self.owner.remove(self.calendar_id, uid)

    def upstream_add_series(self, uid: str) -> None:
        self.owner.put(self.calendar_id, weekly_series(uid))


@contextmanager
def caldav_harness(name: str, credentials: dict[str, str]) -> Iterator[CalDavHarness]:
    owner = DavOwner(credentials["server_url"], credentials.get("username") or None,
                     credentials.get("password") or None)
    calendar_id = owner.make_calendar()
    provider = open_account(credentials, OPTIONS)
    try:
        yield CalDavHarness(name, provider, calendar_id, owner)
    finally:
        aio.run(provider.close())
        owner.delete_calendar(calendar_id)
        owner.close()


@contextmanager
def harness() -> Iterator[CalDavHarness]:
    server = shared_radicale()
    (username, password), = SHARED_USERS.items()
    with caldav_harness("caldav_radicale", {"server_url": server.url, "username": username,
                                            "password": password}) as h:
        yield h
