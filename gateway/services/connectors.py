"""Connectors for the providers Calgate can link today, each verified by a real connection.

A connector turns the consent screen's form into provider credentials, opens the account
through the provider registry and calls ``verify()``; only then are the credentials kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from providers.errors import ProviderError, Unauthorized
from providers.model import AccountInfo
from providers.registry import ProviderOptions, open_account

from .link_errors import explain
from .linking import ConnectorRegistry, FormField, VerificationFailed, VerifiedAccount
from .upstream_apps import UpstreamApps

Credentials = Callable[[Mapping[str, str]], dict[str, str]]
ICLOUD_REFUSED = ("iCloud did not accept that Apple ID and password. iCloud needs an "
                  "app-specific password, not your Apple ID password: create one at "
                  "appleid.apple.com under Sign-In and Security, then try again with it.")


@dataclass(frozen=True, slots=True)
class ProviderConnector:
    """A :class:`gateway.services.linking.Connector` backed by a provider's ``verify``."""

    name: str
    display_name: str
    provider_name: str
    provider_service: str
    fields: Sequence[FormField]
    credentials: Credentials
    options: ProviderOptions
    # This provider's own words for an error type, ahead of link_errors' table.
    hints: Mapping[type[ProviderError], str] = field(default_factory=dict)

    def configured(self, client_id: str) -> bool:
        """Form-linked providers need nothing from the operator."""
        return True

    def verify(self, values: Mapping[str, str]) -> VerifiedAccount:
        credentials = self.credentials(values)
        try:
            info = asyncio.run(self._verify(credentials))
        except ProviderError as exc:
            raise VerificationFailed(explain(self.name, exc, self.hints)) from exc
        return VerifiedAccount(profile_name=info.profile_name, upstream_id=info.upstream_id,
                               credentials=credentials)

    async def _verify(self, credentials: dict[str, str]) -> AccountInfo:
        provider = open_account(self.provider_name, credentials, self.options)
        try:
            return await provider.verify()
        finally:
            await provider.close()


def _caldav(values: Mapping[str, str]) -> dict[str, str]:
    return {"server_url": values["server_url"].strip(), "username": values["username"].strip(),
            "password": values["password"]}


def _icloud(values: Mapping[str, str]) -> dict[str, str]:
    return {"preset": "icloud", "server_url": "", "username": values["username"].strip(),
            "password": values["password"]}


def _ics(values: Mapping[str, str]) -> dict[str, str]:
    return {"url": values["url"].strip()}


def register_defaults(registry: ConnectorRegistry, options: ProviderOptions,
                      apps: UpstreamApps | None = None) -> None:
    """The connectors of the providers that are implemented."""
    if apps is not None:
        from .google import GoogleConnector

        registry.register(GoogleConnector(apps, options))
    user = FormField("username", "Username", autocomplete="username")
    registry.register(ProviderConnector(
        "caldav", "CalDAV server", "caldav", "caldav", (
            FormField("server_url", "Server address", "url",
                      help="For example https://dav.example.com/ (Fastmail, Nextcloud, …)"),
            user,
            FormField("password", "Password", "password", autocomplete="current-password")),
        _caldav, options))
    registry.register(ProviderConnector(
        "apple", "iCloud", "apple", "icloud", (
            FormField("username", "Apple ID", "email", autocomplete="username"),
            FormField("password", "App-specific password", "password",
                      help="Create one at appleid.apple.com under Sign-In and Security. "
                           "Your normal Apple ID password will not work.")),
        _icloud, options, {Unauthorized: ICLOUD_REFUSED}))
    registry.register(ProviderConnector(
        "ics", "Calendar feed (ICS)", "ics", "ics", (
            FormField("url", "Feed address", "url",
                      help="An https:// or webcal:// address. The app can only read it."),),
        _ics, options))
