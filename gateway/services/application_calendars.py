"""Application calendars (API.md s2.2, s11): calendars a client app owns, kept by Calgate.

The registry's app-owned entry names the provider; its account is provisioned on the
app's first call and found again on later ones. Its calendar is listed into the mirror at
once, so ``GET /v1/calendars`` shows it straight after provisioning; the worker's first
sync then finds nothing to change and reports the profile's initial sync as done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Engine

from providers.model import Calendar
from providers.registry import ProviderEntry, ProviderOptions, app_owned_entry

from .accounts import AccountService, Linked, OwnedAccount


class ApplicationCalendars:
    """Provisions (or finds) a client app's application calendar. Blocking calls."""

    def __init__(self, engine: Engine, accounts: AccountService,
                 options: ProviderOptions) -> None:
        self.engine = engine
        self.accounts = accounts
        self.options = options

    def provision(self, client_id: str, application_calendar_id: str,
                  scope: Sequence[str]) -> Linked:
        """The app's calendar named ``application_calendar_id``, made if it does not exist;
        ``scope`` (individual scopes) is what the account's mirror may keep."""
        entry = app_owned_entry()
        credentials = {"application_calendar_id": application_calendar_id}
        # Listed before the account is made, and stored in the same transaction: a caller
        # that finds the account (a later or a simultaneous call) finds its calendar too.
        listed = asyncio.run(_list_calendars(entry, credentials, self.options))
        linked, _made = self.accounts.provision_owned(client_id, OwnedAccount(
            entry.name, entry.provider_service, application_calendar_id, credentials), scope,
            listed)
        return linked


async def _list_calendars(entry: ProviderEntry, credentials: dict[str, str],
                          options: ProviderOptions) -> list[Calendar]:
    provider = entry.open(credentials, options)
    try:
        return await provider.list_calendars()
    finally:
        await provider.close()
