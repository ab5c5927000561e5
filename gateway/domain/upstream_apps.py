"""Upstream OAuth apps of the redirect providers: their client ids and secrets, in the secret
store.

The deployment configures a default app per provider (``calgate providers configure NAME``);
a client app may register its own (``calgate clients set-upstream-app``), so the provider's
consent screen shows the client's name. A profile's stored credentials name the app they
were granted to (``app``: ``default``, or ``client:<calgate client id>``), never its
secret: the secret is merged in only when the account is opened, so rotating an app's
secret needs no profile rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers.registry import redirect_providers

from ..secrets import SecretStore, check_path

DEFAULT = "default"
CLIENT = "client"


class AppNotConfigured(LookupError):
    """No upstream app is configured for this provider (nor for the client)."""


@dataclass(frozen=True, slots=True)
class UpstreamApp:
    provider: str
    client_id: str
    client_secret: str
    owner: str  # DEFAULT, or "client:<id>": the Calgate client app's own upstream project


class UpstreamApps:
    def __init__(self, secrets: SecretStore) -> None:
        self.secrets = secrets

    @staticmethod
    def path(provider: str, calgate_client: str | None = None) -> str:
        if calgate_client is None:
            return check_path(f"upstream-apps/{provider}/default")
        return check_path(f"upstream-apps/{provider}/clients/{calgate_client}")

    def configure(self, provider: str, client_id: str, client_secret: str,
                  calgate_client: str | None = None) -> None:
        _check_provider(provider)
        if not client_id.strip() or not client_secret.strip():
            raise ValueError("both a client id and a client secret are needed")
        self.secrets.put(self.path(provider, calgate_client),
                         {"client_id": client_id.strip(), "client_secret": client_secret.strip()})

    def remove(self, provider: str, calgate_client: str | None = None) -> bool:
        _check_provider(provider)
        path = self.path(provider, calgate_client)
        if self.secrets.find(path) is None:
            return False
        self.secrets.delete(path)
        return True

    def remove_client(self, calgate_client: str) -> None:
        """A client app was deleted: erase every upstream app it registered."""
        for provider in redirect_providers():
            self.remove(provider, calgate_client)

    def for_client(self, provider: str, calgate_client: str) -> UpstreamApp:
        """The app to link ``calgate_client``'s users with: its own, else the default."""
        own = self.secrets.find(self.path(provider, calgate_client))
        if own is not None:
            return UpstreamApp(provider, own["client_id"], own["client_secret"],
                               f"{CLIENT}:{calgate_client}")
        return self.default(provider)

    def default(self, provider: str) -> UpstreamApp:
        found = self.secrets.find(self.path(provider))
        if found is None:
            raise AppNotConfigured(provider)
        return UpstreamApp(provider, found["client_id"], found["client_secret"], DEFAULT)

    def describe(self, provider: str, calgate_client: str | None = None) -> str | None:
        """The configured app's client id (not its secret), for the CLI."""
        found = self.secrets.find(self.path(provider, calgate_client))
        return None if found is None else found["client_id"]

    def resolve(self, provider: str, credentials: Mapping[str, str]) -> dict[str, str]:
        """What the provider opens the account with: stored credentials plus, for redirect
        providers, the client id and secret of the app they were granted to."""
        if provider not in redirect_providers() or "app" not in credentials:
            return dict(credentials)
        owner = credentials["app"]
        if owner.startswith(f"{CLIENT}:"):
            found = self.secrets.find(self.path(provider, owner.split(":", 1)[1]))
            if found is None:
                raise AppNotConfigured(f"{provider} ({owner})")
            app = UpstreamApp(provider, found["client_id"], found["client_secret"], owner)
        else:
            app = self.default(provider)
        merged = {k: v for k, v in credentials.items() if k != "app"}
        return merged | {"client_id": app.client_id, "client_secret": app.client_secret}


def _check_provider(provider: str) -> None:
    if provider not in redirect_providers():
        raise ValueError(f"upstream apps are for {', '.join(redirect_providers())}; "
                         f"not {provider!r}")


__all__ = ["AppNotConfigured", "UpstreamApp", "UpstreamApps"]
