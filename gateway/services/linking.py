"""Connectors that verify an upstream calendar account on the consent screen.

Every provider in the registry is listed; one whose package is not implemented yet shows as
not yet available. A connector checks the
credentials with a real connection and returns what to keep: the secret part goes to the
secret store, the rest to the profile row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from providers.errors import ProviderError
from providers.model import AccountInfo, Calendar
from providers.plugin import FormField as FormField  # re-exported: connectors build forms
from providers.registry import ProviderEntry, ProviderOptions, entries


class VerificationFailed(Exception):
    """The upstream account could not be verified; the message is shown to the end user."""


class LinkElsewhere(VerificationFailed):
    """The account belongs to another provider on the consent screen (``provider``)."""

    def __init__(self, message: str, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class ScopesWithheld(VerificationFailed):
    """The user unticked permissions the app needs on the provider's own consent screen;
    ``missing`` names them as that screen does."""

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """A verified upstream account: ``credentials`` are secret, the rest is not.

    ``name``, ``tzid`` and ``service`` are the account's as the provider says (None: it does
    not); ``calendars`` its calendar list read while linking (None: not read, the first sync
    lists them), so the app's first ``GET /v1/calendars`` after the code is complete.
    """

    profile_name: str
    upstream_id: str
    credentials: Mapping[str, str]
    settings: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    tzid: str | None = None
    service: str | None = None
    calendars: tuple[Calendar, ...] | None = None


CALENDARS_UNREADABLE = ("Calgate signed in to your calendar account but could not read the "
                        "list of your calendars, so nothing was linked. Please try again in "
                        "a few minutes.")


async def inspect(entry: ProviderEntry, credentials: Mapping[str, str],
                  options: ProviderOptions) -> tuple[AccountInfo, list[Calendar]]:
    """Verify an account with a real call, then read its calendar list, on one connection.

    A failure to verify raises the provider's error as it is; a failure to list the calendars
    raises :class:`CalendarsUnreadable` (linking must not hand the app an empty list).
    """
    provider = entry.open(credentials, options)
    try:
        info = await provider.verify()
        try:
            calendars = await provider.list_calendars()
        except ProviderError as exc:
            raise CalendarsUnreadable(exc) from exc
        return info, calendars
    finally:
        await provider.close()


class CalendarsUnreadable(Exception):
    """The account was verified but its calendar list could not be read (``error``: why)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


def verified(info: AccountInfo, calendars: Sequence[Calendar],
             credentials: Mapping[str, str]) -> VerifiedAccount:
    """What a connector keeps of an inspected account."""
    return VerifiedAccount(profile_name=info.profile_name, upstream_id=info.upstream_id,
                           credentials=credentials, name=info.name, tzid=info.tzid,
                           service=info.service, calendars=tuple(calendars))


class Linkable(Protocol):
    """What every connector says about itself."""

    @property
    def name(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def provider_name(self) -> str: ...
    @property
    def provider_service(self) -> str: ...

    def configured(self, client_id: str) -> bool:
        """Whether this deployment can link it for ``client_id`` now (an upstream OAuth
        app set up, say); the consent screen does not offer it otherwise."""
        ...


class Connector(Linkable, Protocol):
    """Links one kind of upstream calendar account."""

    @property
    def fields(self) -> Sequence[FormField]: ...

    def verify(self, values: Mapping[str, str]) -> VerifiedAccount:
        """Check the account with a real upstream connection; raise VerificationFailed."""
        ...


@runtime_checkable
class RedirectConnector(Linkable, Protocol):
    """Links an account through the provider's own OAuth server."""

    def authorization_url(self, client_id: str, scopes: frozenset[str], redirect_uri: str,
                          state: str, code_verifier: str) -> str:
        """Where to send the user; ``scopes`` are the Calgate scopes the app asked for."""
        ...

    def complete(self, client_id: str, scopes: frozenset[str], redirect_uri: str, code: str,
                 code_verifier: str) -> VerifiedAccount:
        """Exchange ``code``, check the granted permissions and verify the account with a
        real call; raise :class:`ScopesWithheld` or :class:`VerificationFailed`."""
        ...

    def refused(self, params: Mapping[str, str]) -> str:
        """What to tell the user about the provider's ``error`` redirect (its query)."""
        ...


AnyConnector = Connector | RedirectConnector


@dataclass(frozen=True, slots=True)
class Offering:
    """A provider shown on the consent screen, with or without a working connector."""

    name: str
    display_name: str
    connector: AnyConnector | None
    note: str = ""
    remove_access: str = ""  # the entry's access note: where to remove the app upstream


class ConnectorRegistry:
    """Registered connectors plus the registry's other providers, for the consent screen."""

    def __init__(self) -> None:
        self._connectors: dict[str, AnyConnector] = {}

    def register(self, connector: AnyConnector) -> None:
        self._connectors[connector.name] = connector

    def get(self, name: str) -> AnyConnector | None:
        return self._connectors.get(name)

    def offerings(self, client_id: str) -> list[Offering]:
        """What ``client_id``'s users may choose from. A registered connector the deployment
        has not configured is left out altogether: offering it would only fail later."""
        usable = {n: c for n, c in self._connectors.items() if c.configured(client_id)}
        listed = [e for e in entries() if e.link != "none"]
        planned = [Offering(e.name, e.display_name, usable.get(e.name),
                            "" if e.name in usable else "Not yet available",
                            e.remove_access_note() if e.name in usable else "")
                   for e in listed
                   if e.name in usable or e.name not in self._connectors]
        extra = [Offering(c.name, c.display_name, c) for n, c in usable.items()
                 if n not in {e.name for e in listed}]
        return extra + planned


@dataclass(frozen=True, slots=True)
class EntryConnector:
    """What every connector reads off its registry entry: the names the consent screen and
    the profiles use."""

    entry: ProviderEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def display_name(self) -> str:
        return self.entry.display_name

    @property
    def provider_name(self) -> str:
        return self.entry.name

    @property
    def provider_service(self) -> str:
        return self.entry.provider_service
