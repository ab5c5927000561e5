"""Contract harness for the in-memory reference provider."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from providers.memory.provider import WORLD, MemoryProvider
from providers.model import Event
from tests.contract.harness import SERIES_EXPECTED_STARTS


@dataclass
class MemoryHarness:
    account: str
    provider: MemoryProvider
    calendar_id: str
    name: str = "memory"
    writable: bool = True

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        WORLD.put(self.account, self.calendar_id, uid, [Event(
            resource_id=uid, instance_id=uid, start=start, end=start + duration,
            summary=summary, transparency="transparent" if transparent else "opaque")])

    def upstream_rename(self, uid: str, summary: str) -> None:
        events = WORLD.accounts[self.account].calendars[self.calendar_id].resources[uid]
        WORLD.put(self.account, self.calendar_id, uid,
                  [replace(e, summary=summary) for e in events])

    def upstream_remove(self, uid: str) -> None:
        WORLD.remove(self.account, self.calendar_id, uid)

    def upstream_add_series(self, uid: str) -> None:
        # The reference stores instances already expanded: it defines the expected result.
        WORLD.put(self.account, self.calendar_id, uid, [
            Event(resource_id=uid, instance_id=f"{uid}@{s.isoformat()}", start=s,
                  end=s + timedelta(hours=1), summary="Weekly", recurring=True,
                  start_tzid="Europe/Berlin", end_tzid="Europe/Berlin")
            for s in SERIES_EXPECTED_STARTS])


@contextmanager
def harness() -> Iterator[MemoryHarness]:
    name = f"user-{uuid.uuid4().hex[:8]}@example.com"
    account = WORLD.add_account(name, "secret")
    calendar_id = next(iter(account.calendars))
    yield MemoryHarness(name, MemoryProvider(name, "secret"), calendar_id)
    WORLD.accounts.pop(name, None)
