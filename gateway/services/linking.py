"""Connectors that verify an upstream calendar account on the consent screen.

Each provider issue adds its connector (CalDAV, iCloud, ICS, Google, Microsoft, Exchange);
until then the consent screen lists them as not yet available. A connector checks the
credentials with a real connection and returns what to keep: the secret part goes to the
secret store, the rest to the profile row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class VerificationFailed(Exception):
    """The upstream account could not be verified; the message is shown to the end user."""


class ScopesWithheld(VerificationFailed):
    """The user unticked permissions the app needs on the provider's own consent screen;
    ``missing`` names them as that screen does."""

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    label: str
    kind: str = "text"
    required: bool = True
    help: str = ""
    autocomplete: str = "off"


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """A verified upstream account: ``credentials`` are secret, the rest is not."""

    profile_name: str
    upstream_id: str
    credentials: Mapping[str, str]
    settings: Mapping[str, str] = field(default_factory=dict)


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
    """Links an account through the provider's own OAuth server (Google, Microsoft)."""

    def authorization_url(self, client_id: str, scopes: frozenset[str], redirect_uri: str,
                          state: str, code_verifier: str) -> str:
        """Where to send the user; ``scopes`` are the Calgate scopes the app asked for."""
        ...

    def complete(self, client_id: str, scopes: frozenset[str], redirect_uri: str, code: str,
                 code_verifier: str) -> VerifiedAccount:
        """Exchange ``code``, check the granted permissions and verify the account with a
        real call; raise :class:`ScopesWithheld` or :class:`VerificationFailed`."""
        ...


AnyConnector = Connector | RedirectConnector


@dataclass(frozen=True, slots=True)
class Offering:
    """A provider shown on the consent screen, with or without a working connector."""

    name: str
    display_name: str
    connector: AnyConnector | None
    note: str = ""


# What the consent screen lists while the provider issues are open, in display order.
PLANNED: tuple[tuple[str, str], ...] = (
    ("google", "Google Calendar"),
    ("office365", "Microsoft 365"),
    ("live_connect", "Outlook.com"),
    ("exchange", "Exchange (on-premises)"),
    ("apple", "iCloud"),
    ("caldav", "CalDAV server"),
    ("ics", "Calendar feed (ICS)"),
)


class ConnectorRegistry:
    """Registered connectors plus the planned ones, for the consent screen."""

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
        planned = [Offering(name, label, usable.get(name),
                            "" if name in usable else "Not yet available")
                   for name, label in PLANNED
                   if name in usable or name not in self._connectors]
        extra = [Offering(c.name, c.display_name, c) for n, c in usable.items()
                 if n not in dict(PLANNED)]
        return extra + planned
