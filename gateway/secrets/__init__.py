"""Secret storage: the :class:`SecretStore` protocol and its two backends.

``open_secret_store(settings)`` picks the backend named by ``CALGATE_SECRET_BACKEND``. The
Vault backend is imported only when chosen, so hvac (and requests) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.secrets.base import (
    DataKey,
    SecretNotFound,
    SecretStore,
    SecretStoreError,
    SecretStoreUnavailable,
    check_path,
)

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "DataKey",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreError",
    "SecretStoreUnavailable",
    "check_path",
    "open_secret_store",
]


def open_secret_store(settings: Settings) -> SecretStore:
    """The secret store selected by ``settings.secret_backend`` (``local`` or ``vault``)."""
    match settings.secret_backend:
        case "vault":
            from gateway.secrets.vault import VaultSecretStore

            return VaultSecretStore.from_settings(settings)
        case "local":
            from gateway.secrets.local import LocalSecretStore

            return LocalSecretStore(settings.effective_local_secret_dir)
    raise ValueError(f"unknown secret backend {settings.secret_backend!r}")
