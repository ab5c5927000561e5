"""Contract harness for the Exchange provider against the Exchange emulator (one emulator
per test process, a fresh mailbox per test) over HTTPS with NTLM and the emulator's private
CA as the operator's CA bundle. The owner edits upstream through the emulator's control API,
as they would in Outlook; items the owner makes are named by the contract's ids (EWS picks
ids itself; the control API lets a test choose them)."""

from __future__ import annotations

import atexit
import gc
import itertools
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from providers.exchange.config import ExchangeSettings
from providers.exchange.provider import EwsProvider, open_account
from providers.outbound import OutboundPolicy
from providers.registry import ProviderOptions
from tests.emulators.exchange import ExchangeEmulator

PASSWORD = "Passw0rd!"
# Mondays 09:00 Berlin from 2027-03-01: the 03-08 occurrence is cancelled and the 03-22
# one moved to 14:00; occurrences are named by their original start (09:00 CET = 08:00Z).
CANCELLED = datetime.fromisoformat("2027-03-08T08:00:00+00:00")
MOVED = datetime.fromisoformat("2027-03-22T08:00:00+00:00")
_USERS = itertools.count(1)
_SHARED: list[ExchangeEmulator] = []


def shared_emulator() -> ExchangeEmulator:
    if not _SHARED:
        emu = ExchangeEmulator().start()
        atexit.register(emu.stop)
        _SHARED.append(emu)
    return _SHARED[0]


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class PerCall:
    """The provider as the gateway uses it: opened for one job (here, one call) and closed
    after it (which also takes its protocol out of exchangelib's cache)."""

    name = EwsProvider.name
    capabilities = EwsProvider.capabilities

    def __init__(self, opener: Callable[[], EwsProvider]) -> None:
        self.opener = opener

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            provider = self.opener()
            try:
                return await getattr(provider, method)(*args, **kwargs)
            finally:
                await provider.close()
                _collect_abandoned_responses()
        return call


def _collect_abandoned_responses() -> None:
    # As in tests/integration/test_exchange_provider.py: exchangelib leaves some responses
    # unclosed (a 401 of the NTLM handshake among them), so their sockets are freed only
    # when the garbage collector finds them. Collect them here, after the call that made
    # them, rather than let the warning land on whatever runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@dataclass
class ExchangeHarness:
    emu: ExchangeEmulator
    email: str
    provider: PerCall
    calendar_id: str
    name: str = "exchange"
    writable: bool = True

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        self.emu.add_item(self.email, uid, self.calendar_id, Subject=summary,
                          Start=_instant(start), End=_instant(start + duration),
                          LegacyFreeBusyStatus="Free" if transparent else "Busy")

    def upstream_rename(self, uid: str, summary: str) -> None:
        self.emu.edit(self.email, uid, Subject=summary)

    def upstream_remove(self, uid: str) -> None:
        self.emu.remove(self.email, uid)

    def upstream_add_series(self, uid: str) -> None:
        self.emu.add_series(self.email, uid, "2027-03-01T08:00:00Z", "2027-03-01T09:00:00Z",
                            "Europe/Berlin", self.calendar_id, Subject="Weekly",
                            LegacyFreeBusyStatus="Busy")
        # The owner cancels one occurrence and moves another (an exception of the series).
        self.emu.cancel_occurrence(self.email, uid, CANCELLED)
        self.emu.move_occurrence(self.email, uid, MOVED,
                                 datetime.fromisoformat("2027-03-22T13:00:00+00:00"),
                                 datetime.fromisoformat("2027-03-22T14:00:00+00:00"))


@contextmanager
def harness() -> Iterator[ExchangeHarness]:
    emu = shared_emulator()
    email = f"user{next(_USERS)}@contoso.test"
    box = emu.add_user(email, PASSWORD)
    options = ProviderOptions(outbound=OutboundPolicy.allowing(["127.0.0.0/8"]),
                              settings={"exchange": ExchangeSettings(ca_bundle=emu.ca.pem_path)})
    login = "CONTOSO\\" + email.partition("@")[0]
    credentials = {"email": email, "password": PASSWORD, "login": login,
                   "ews_url": emu.ews_url()}
    provider = PerCall(lambda: open_account(credentials, options))
    yield ExchangeHarness(emu, email, provider, box.calendar.folder_id)
