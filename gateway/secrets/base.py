"""The secret store: where upstream credentials, upstream app secrets and data keys live.

The database never holds a secret, only a *path* into this store. Two backends implement
the protocol: ``vault`` (HashiCorp Vault or OpenBao through hvac: KV v2 for secrets,
Transit for wrapping data keys) and ``local`` (AES-GCM files under a folder, the embedded
default). The API is blocking (hvac is); callers in async code run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class SecretStoreError(Exception):
    """The secret store failed; the message never contains secret material."""


class SecretNotFound(SecretStoreError):
    """No secret (or no live version of it) exists at this path."""


class SecretStoreUnavailable(SecretStoreError):
    """The backend could not be reached or refused our credentials."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """A fresh per-account data key: use ``plaintext``, store only ``wrapped``."""

    plaintext: bytes
    wrapped: str


class SecretStore(Protocol):
    """Key/value secrets by path, plus envelope encryption of data keys.

    Paths are relative, slash-separated, made of ``[A-Za-z0-9_.-]`` segments, e.g.
    ``profiles/pro_abc/credentials``. Values are flat string maps.
    """

    def put(self, path: str, data: Mapping[str, str]) -> None:
        """Create or replace the secret at ``path`` (a new version in Vault)."""
        ...

    def get(self, path: str) -> dict[str, str]:
        """The latest value at ``path``; raises :class:`SecretNotFound` if there is none."""
        ...

    def find(self, path: str) -> dict[str, str] | None:
        """The latest value at ``path``, or ``None``."""
        ...

    def delete(self, path: str) -> None:
        """Destroy every version and the metadata at ``path``; no error if absent."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Paths of the secrets directly or indirectly under ``prefix`` (no values)."""
        ...

    def new_data_key(self) -> DataKey:
        """A new random 256-bit data key and its wrapped (encrypted) form."""
        ...

    def unwrap_data_key(self, wrapped: str) -> bytes:
        """The plaintext of a key made by :meth:`new_data_key`."""
        ...

    def check(self) -> None:
        """Raise :class:`SecretStoreUnavailable` unless the store is usable (readiness)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_path(path: str) -> str:
    """Validate a secret path; raise ValueError for anything that could escape its folder."""
    import re

    if not path or path.startswith("/") or path.endswith("/"):
        raise ValueError("secret paths are relative and do not end in '/'")
    for segment in path.split("/"):
        if segment in {"", ".", ".."} or not re.fullmatch(r"[A-Za-z0-9_.\-]+", segment):
            raise ValueError(f"bad secret path segment {segment!r}")
    return path
