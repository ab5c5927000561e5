"""Opening a profile's upstream account: its stored credentials from the secret store, plus
the upstream app's client id and secret for providers linked through their own OAuth."""

from __future__ import annotations

from anyio import to_thread

from providers.protocol import CalendarProvider
from providers.registry import ProviderOptions, open_account

from ..secrets import SecretStore
from .upstream_apps import UpstreamApps


class ProfileOpener:
    def __init__(self, secrets: SecretStore, options: ProviderOptions,
                 apps: UpstreamApps | None = None) -> None:
        self.secrets = secrets
        self.options = options
        self.apps = apps or UpstreamApps(secrets)

    def credentials(self, provider_name: str, credential_path: str) -> dict[str, str]:
        """Blocking: what the provider opens the account with."""
        return self.apps.resolve(provider_name, self.secrets.get(credential_path))

    async def open(self, provider_name: str, credential_path: str) -> CalendarProvider:
        credentials = await to_thread.run_sync(self.credentials, provider_name, credential_path)
        return open_account(provider_name, credentials, self.options)


__all__ = ["ProfileOpener"]
