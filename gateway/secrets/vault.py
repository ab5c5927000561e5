"""The Vault / OpenBao secret store: KV v2 for secrets, Transit for wrapping data keys.

Every hvac and requests exception is translated here, once, by :func:`_translated`; none
leaves this module. Messages name paths and Vault's own error text, never secret values.

Auth (``CALGATE_VAULT_AUTH``): ``token`` reads a token file (re-read when Vault answers 403,
so a Vault Agent sink can rotate it); ``approle`` and ``kubernetes`` log in lazily on first
use and log in again once when a call gets 403 (expired or revoked token).

Policy the application token needs (``bootstrap_vault`` needs an operator token instead)::

    path "<kv>/data/<prefix>/*"      { capabilities = ["create", "read", "update"] }
    path "<kv>/metadata/<prefix>/*"  { capabilities = ["read", "list", "delete"] }
    path "<transit>/keys/<key>"      { capabilities = ["read", "create", "update"] }
    path "<transit>/datakey/plaintext/<key>" { capabilities = ["update"] }
    path "<transit>/decrypt/<key>"   { capabilities = ["update"] }
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions as hvac_errors
import requests

from gateway.secrets.base import (
    DataKey,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    check_path,
)
from gateway.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Login = Callable[[hvac.Client], None]  # authenticates a client in place (sets its token)

_UNREACHABLE = (requests.ConnectionError, requests.Timeout)  # SSLError is a ConnectionError
_REFUSED = (hvac_errors.Forbidden, hvac_errors.Unauthorized)
_DOWN = (hvac_errors.VaultDown, hvac_errors.VaultNotInitialized, hvac_errors.BadGateway,
         hvac_errors.RateLimitExceeded)


class VaultSecretStore:
    """:class:`~gateway.secrets.base.SecretStore` on Vault or OpenBao (thread-safe)."""

    def __init__(self, client: hvac.Client, kv_mount: str = "secret",
                 kv_prefix: str = "calgate", transit_mount: str = "transit",
                 transit_key: str = "calgate-data-keys", *, login: Login | None = None) -> None:
        """``client`` must be authenticated already unless ``login`` is given."""
        self._client = client
        self._kv: Any = client.secrets.kv.v2
        self._transit: Any = client.secrets.transit
        self._kv_mount = kv_mount
        self._kv_prefix = check_path(kv_prefix.strip("/")) if kv_prefix.strip("/") else ""
        self._transit_mount = transit_mount
        self._transit_key = transit_key
        self._login = login
        self._logged_in = login is None
        self._transit_ready = False
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultSecretStore:
        """A store configured by the ``CALGATE_VAULT_*`` settings; logs in on first use."""
        return cls(
            make_client(settings), settings.vault_kv_mount, settings.vault_kv_prefix,
            settings.vault_transit_mount, settings.vault_transit_key,
            login=login_for(settings))

    @property
    def kv_prefix(self) -> str:
        """The folder under the KV mount that holds this store's secrets."""
        return self._kv_prefix

    # -- KV v2 ---------------------------------------------------------------------------

    def put(self, path: str, data: Mapping[str, str]) -> None:
        """Write a new version of the secret at ``path``."""
        full, secret = self._kv_path(path), _flat_strings(data)
        self._call(f"write secret {path!r}", lambda: self._kv.create_or_update_secret(
            full, secret=secret, mount_point=self._kv_mount))

    def get(self, path: str) -> dict[str, str]:
        """The latest live version at ``path``; :class:`SecretNotFound` if there is none."""
        full = self._kv_path(path)
        response = self._call(f"read secret {path!r}", lambda: self._kv.read_secret_version(
            full, mount_point=self._kv_mount, raise_on_deleted_version=True))
        data = (response.get("data") or {}).get("data")
        if data is None:  # a destroyed latest version reads as null data
            raise SecretNotFound(f"read secret {path!r}: not found")
        return {str(k): str(v) for k, v in data.items()}

    def find(self, path: str) -> dict[str, str] | None:
        """The latest live version at ``path`` or ``None``."""
        with suppress(SecretNotFound):
            return self.get(path)
        return None

    def delete(self, path: str) -> None:
        """Destroy every version and the metadata; no error if absent."""
        full = self._kv_path(path)
        with suppress(SecretNotFound):
            self._call(f"delete secret {path!r}", lambda: self._kv.delete_metadata_and_all_versions(
                full, mount_point=self._kv_mount))

    def list(self, prefix: str) -> list[str]:
        """Full secret paths under ``prefix`` (``""`` for all), sorted."""
        prefix = prefix.removesuffix("/")  # "a/" names the folder a; "/a" stays invalid
        return sorted(self._walk(check_path(prefix) if prefix else ""))

    def _walk(self, rel: str) -> Iterator[str]:
        folder = self._kv_path(rel) if rel else self._kv_prefix
        try:
            response = self._call(f"list secrets under {rel!r}", lambda: self._kv.list_secrets(
                folder, mount_point=self._kv_mount))
        except SecretNotFound:  # Vault answers 404 for an empty folder
            return
        for key in response["data"]["keys"]:
            child = f"{rel}/{key}" if rel else str(key)
            if child.endswith("/"):
                yield from self._walk(child.rstrip("/"))
            else:
                yield child

    # -- Transit -------------------------------------------------------------------------

    def new_data_key(self) -> DataKey:
        """A 256-bit key from Transit's datakey endpoint and its ``vault:v1:...`` wrapping."""
        self._ensure_transit_key()
        response = self._call("generate a data key", lambda: self._transit.generate_data_key(
            self._transit_key, key_type="plaintext", bits=256, mount_point=self._transit_mount))
        data = response["data"]
        return DataKey(_b64decode(data["plaintext"]), str(data["ciphertext"]))

    def unwrap_data_key(self, wrapped: str) -> bytes:
        """Decrypt a wrapped key with Transit; :class:`SecretStoreError` if it was altered."""
        if not wrapped.startswith("vault:"):
            raise SecretStoreError("not a data key wrapped by Vault transit")
        self._ensure_transit_key()
        response = self._call("unwrap a data key", lambda: self._transit.decrypt_data(
            self._transit_key, ciphertext=wrapped, mount_point=self._transit_mount))
        return _b64decode(response["data"]["plaintext"])

    def _ensure_transit_key(self) -> None:
        if self._transit_ready:
            return
        with self._lock:
            if not self._transit_ready:
                self._call("ensure the transit key", self._create_transit_key_if_missing)
                self._transit_ready = True

    def _create_transit_key_if_missing(self) -> None:
        try:
            self._transit.read_key(self._transit_key, mount_point=self._transit_mount)
            return
        except hvac_errors.Forbidden:
            return  # the policy may allow datakey/decrypt without reading key metadata
        except hvac_errors.InvalidPath as exc:
            if "no handler for route" in str(exc.args[0] or ""):  # the mount, not the key
                raise SecretStoreUnavailable(
                    f"the transit secrets engine is not enabled at {self._transit_mount!r}: "
                    f"an operator must run `vault secrets enable -path={self._transit_mount} "
                    "transit` (or `bao ...`) or Calgate's Vault bootstrap") from exc
        log.info("creating transit key %r at %r", self._transit_key, self._transit_mount)
        self._transit.create_key(self._transit_key, mount_point=self._transit_mount)

    # -- lifecycle -----------------------------------------------------------------------

    def check(self) -> None:
        """Log in if needed, look our token up and make sure the transit key exists."""
        try:
            self._call("check the token", lambda: self._client.auth.token.lookup_self())
            self._ensure_transit_key()
        except SecretStoreUnavailable:
            raise
        except SecretStoreError as exc:
            raise SecretStoreUnavailable(str(exc)) from exc

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.adapter.close()

    # -- plumbing ------------------------------------------------------------------------

    def _kv_path(self, path: str) -> str:
        check_path(path)
        return f"{self._kv_prefix}/{path}" if self._kv_prefix else path

    def _call(self, what: str, op: Callable[[], T]) -> T:
        """Run one hvac call: log in first if needed, log in again once on 403."""
        with _translated(what):
            self._ensure_logged_in()
            token = self._client.token
            try:
                return op()
            except hvac_errors.Forbidden:
                if not self._relogin(token):
                    raise
                return op()

    def _ensure_logged_in(self) -> None:
        if self._logged_in:
            return
        with self._lock:
            if not self._logged_in:
                self._authenticate()
                self._logged_in = True

    def _relogin(self, failed_token: str | None) -> bool:
        """Fresh credentials after a 403; False if there is nothing new to try."""
        if self._login is None:
            return False
        with self._lock:
            if self._client.token != failed_token:  # another thread already logged in
                return True
            log.info("Vault answered 403; authenticating again")
            self._authenticate()
            return bool(self._client.token != failed_token)

    def _authenticate(self) -> None:
        assert self._login is not None
        try:
            self._login(self._client)
        except _UNREACHABLE:
            raise
        except (hvac_errors.VaultError, requests.RequestException) as exc:
            raise SecretStoreUnavailable(f"Vault login failed: {_reason(exc)}") from exc


def make_client(settings: Settings) -> hvac.Client:
    """An unauthenticated hvac client for ``settings.vault_addr``; TLS is always verified."""
    verify: bool | str = str(settings.vault_ca_file) if settings.vault_ca_file else True
    # token="" stops hvac from falling back to $VAULT_TOKEN or ~/.vault-token.
    return hvac.Client(url=settings.vault_addr, token="", verify=verify, timeout=10)


def login_for(settings: Settings) -> Login:
    """The login step for ``settings.vault_auth``; credentials are read at login time."""
    if settings.vault_auth == "approle":
        def approle(client: hvac.Client) -> None:
            if not settings.vault_role_id:
                raise SecretStoreUnavailable("CALGATE_VAULT_ROLE_ID is not set")
            secret_id = _read_credential(
                settings.vault_secret_id_file, "CALGATE_VAULT_SECRET_ID_FILE")
            client.auth.approle.login(role_id=settings.vault_role_id, secret_id=secret_id)
        return approle
    if settings.vault_auth == "kubernetes":
        def kubernetes(client: hvac.Client) -> None:
            jwt = _read_credential(settings.vault_k8s_token_file, "CALGATE_VAULT_K8S_TOKEN_FILE")
            client.auth.kubernetes.login(
                settings.vault_k8s_role, jwt, mount_point=settings.vault_k8s_mount)
        return kubernetes

    def token(client: hvac.Client) -> None:
        client.token = _read_credential(settings.vault_token_file, "CALGATE_VAULT_TOKEN_FILE")
    return token


def bootstrap_vault(client: hvac.Client, settings: Settings) -> None:
    """Enable KV v2 and Transit at the configured mounts if absent, create the transit key.

    Needs an operator token (``sys/mounts`` access); used by tests and the operator CLI.
    """
    kv, transit = f"{settings.vault_kv_mount}/", f"{settings.vault_transit_mount}/"
    with _translated("bootstrap Vault"):
        response = client.sys.list_mounted_secrets_engines()
        mounts = response.get("data", response)
        if kv not in mounts:
            client.sys.enable_secrets_engine(
                "kv", path=settings.vault_kv_mount, options={"version": "2"})
        if transit not in mounts:
            client.sys.enable_secrets_engine("transit", path=settings.vault_transit_mount)
        try:
            client.secrets.transit.read_key(
                settings.vault_transit_key, mount_point=settings.vault_transit_mount)
        except hvac_errors.InvalidPath:
            client.secrets.transit.create_key(
                settings.vault_transit_key, mount_point=settings.vault_transit_mount)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Map hvac/requests exceptions onto the secret-store errors (the one place we do)."""
    try:
        yield
    except hvac_errors.InvalidPath as exc:
        raise SecretNotFound(f"{what}: not found") from exc
    except _REFUSED as exc:
        raise SecretStoreUnavailable(f"{what}: Vault refused access ({_reason(exc)})") from exc
    except _DOWN as exc:
        raise SecretStoreUnavailable(f"{what}: Vault is unavailable ({_reason(exc)})") from exc
    except _UNREACHABLE as exc:
        raise SecretStoreUnavailable(f"{what}: cannot reach Vault ({_reason(exc)})") from exc
    except (hvac_errors.VaultError, requests.RequestException) as exc:
        raise SecretStoreError(f"{what}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """Vault's error text (never a request or response body) or the exception's class."""
    if isinstance(exc, hvac_errors.VaultError) and exc.args and exc.args[0]:
        return str(exc.args[0])
    return type(exc).__name__


def _read_credential(path: Path | None, variable: str) -> str:
    if path is None:
        raise SecretStoreUnavailable(f"{variable} is not set")
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretStoreUnavailable(f"cannot read {variable} ({path}): {exc.strerror}") from exc
    if not value:
        raise SecretStoreUnavailable(f"{variable} ({path}) is empty")
    return value


def _flat_strings(data: Mapping[str, str]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise TypeError("secret values are flat maps of strings to strings")
    return dict(data)


def _b64decode(value: object) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretStoreError("Vault returned a malformed data key") from exc
