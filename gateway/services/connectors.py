"""Connectors for every implemented provider in the registry, each verified by a real
connection.

A form connector turns the consent screen's form into provider credentials (the provider's
:class:`providers.plugin.FormLinking`), opens the account through the registry and calls
``verify()``; only then are the credentials kept. Providers linked through their own OAuth
server get the one :class:`gateway.services.upstream.UpstreamConnector`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from providers.errors import ProviderError
from providers.plugin import FormField, FormLinking
from providers.registry import ProviderOptions, entries

from ..domain.upstream_apps import UpstreamApps
from .link_errors import explain, report
from .linking import (
    CALENDARS_UNREADABLE,
    CalendarsUnreadable,
    ConnectorRegistry,
    EntryConnector,
    LinkElsewhere,
    VerificationFailed,
    VerifiedAccount,
    inspect,
    verified,
)
from .upstream import UpstreamConnector


@dataclass(frozen=True, slots=True)
class FormConnector(EntryConnector):
    """A :class:`gateway.services.linking.Connector` backed by a provider's ``verify``."""

    linking: FormLinking
    options: ProviderOptions

    @property
    def fields(self) -> Sequence[FormField]:
        return self.linking.fields

    def configured(self, client_id: str) -> bool:
        """Form-linked providers need nothing from the operator."""
        return True

    def verify(self, values: Mapping[str, str]) -> VerifiedAccount:
        credentials = self.linking.credentials(values)
        try:
            info, calendars = asyncio.run(inspect(self.entry, credentials, self.options))
        except ProviderError as exc:
            message = explain(self.name, exc, self.linking.hints)
            other = next((name for kind, name in self.linking.elsewhere.items()
                          if isinstance(exc, kind)), None)
            if other is not None:
                raise LinkElsewhere(message, other) from exc
            raise VerificationFailed(message) from exc
        except CalendarsUnreadable as exc:
            report(self.name, exc.error)
            raise VerificationFailed(CALENDARS_UNREADABLE) from exc
        return verified(info, calendars, credentials)


def register_defaults(registry: ConnectorRegistry, options: ProviderOptions,
                      apps: UpstreamApps | None = None) -> None:
    """A connector for every implemented provider the consent screen offers (redirect
    providers only when ``apps`` can say which upstream app to link with)."""
    for entry in entries():
        if not entry.implemented or entry.linking is None:
            continue
        if entry.link == "redirect":
            if apps is not None:
                registry.register(UpstreamConnector(entry, entry.upstream_oauth(options),
                                                    apps, options))
        elif entry.link in ("form", "url"):
            registry.register(FormConnector(entry, entry.form(), options))
