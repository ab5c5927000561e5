"""Contract harness for the CalDAV provider against a real Xandikos (no auth; one server
per test process, a fresh calendar per test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.contract.harness_caldav_radicale import CalDavHarness, caldav_harness
from tests.support.davservers import shared_xandikos


@contextmanager
def harness() -> Iterator[CalDavHarness]:
    server = shared_xandikos()
    with caldav_harness("caldav_xandikos", {"server_url": server.url}) as h:
        yield h
