"""The lazy provider registry: a provider's module (and its client library) is imported only
when an account of that kind is opened, so exchangelib loads only for Exchange profiles."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .outbound import OutboundPolicy
from .protocol import CalendarProvider


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """Deployment-wide knobs every provider may read."""

    timeout: float = 20.0
    # What user-chosen servers (CalDAV, ICS feeds, …) may be reached: the outbound guard's
    # deny list minus the operator's allowed networks (CALGATE_OUTBOUND_ALLOW_NETWORKS).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    user_agent: str = "Calgate/0.1"
    extra: Mapping[str, str] = field(default_factory=dict)


Opener = Callable[[Mapping[str, str], ProviderOptions], CalendarProvider]

# provider name -> "module:function" opening an account from its credentials.
PROVIDERS: dict[str, str] = {
    "memory": "providers.memory.provider:open_account",
    "caldav": "providers.caldav.provider:open_account",
    "apple": "providers.caldav.provider:open_icloud_account",
    "ics": "providers.ics.provider:open_account",
    "google": "providers.google.provider:open_account",
}


class UnknownProvider(KeyError):
    """No provider of that name is registered."""


def opener(name: str) -> Opener:
    """The function that opens accounts of provider ``name`` (imported on first use)."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None
    module_name, _, attribute = target.partition(":")
    function: Opener = getattr(importlib.import_module(module_name), attribute)
    return function


def open_account(name: str, credentials: Mapping[str, str],
                 options: ProviderOptions | None = None) -> CalendarProvider:
    """Open an upstream account of provider ``name`` with its stored credentials."""
    return opener(name)(credentials, options or ProviderOptions())
