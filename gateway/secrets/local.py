"""The embedded secret store: AES-GCM encrypted files under one folder.

Layout of ``<directory>``::

    master.key                       32 random bytes, mode 0600
    profiles.d/pro_abc.d/credentials.secret

A secret path's last segment becomes ``<segment>.secret`` and every other segment a
sub-folder ``<segment>.d``. The suffixes keep files, folders and temporary files in
separate namespaces, so ``a`` and ``a/b`` (or ``a.secret/b``) can coexist, as in Vault.

A secret file is ``MAGIC || nonce(12) || AES-256-GCM(master key, nonce, json, ad=path)``:
the path as associated data means a file moved to another path no longer decrypts.
Data keys are wrapped under a key derived from the master key with HKDF.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.secrets.base import (
    DataKey,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    check_path,
)

MASTER_KEY_FILE = "master.key"
FILE_SUFFIX = ".secret"
FOLDER_SUFFIX = ".d"
WRAP_PREFIX = "local:v1:"
_MAGIC = b"CGS1"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class LocalSecretStore:
    """:class:`~gateway.secrets.base.SecretStore` on the local file system (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        self._root = Path(directory)
        self._lock = threading.RLock()
        self._master: bytes | None = None

    # -- SecretStore -------------------------------------------------------------------

    def put(self, path: str, data: Mapping[str, str]) -> None:
        """Encrypt ``data`` and replace the file for ``path`` atomically."""
        target = self._file_for(check_path(path))
        plaintext = json.dumps(_flat_strings(data), sort_keys=True).encode()
        with self._lock:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = AESGCM(self._master_key()).encrypt(nonce, plaintext, path.encode())
            try:
                self._make_folders(target.parent)
                _write_atomically(target, _MAGIC + nonce + sealed)
            except OSError as exc:
                raise SecretStoreError(f"cannot write secret {path!r}: {exc.strerror}") from exc

    def get(self, path: str) -> dict[str, str]:
        """The value at ``path``; :class:`SecretNotFound` if there is none."""
        found = self.find(path)
        if found is None:
            raise SecretNotFound(f"no secret at {path!r}")
        return found

    def find(self, path: str) -> dict[str, str] | None:
        """The value at ``path`` or ``None``."""
        target = self._file_for(check_path(path))
        with self._lock:
            try:
                blob = target.read_bytes()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise SecretStoreError(f"cannot read secret {path!r}: {exc.strerror}") from exc
            return _open_secret(self._master_key(), path, blob)

    def delete(self, path: str) -> None:
        """Overwrite the file with random bytes, fsync, unlink, prune empty folders."""
        target = self._file_for(check_path(path))
        with self._lock:
            try:
                _shred(target)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise SecretStoreError(f"cannot delete secret {path!r}: {exc.strerror}") from exc
            self._prune(target.parent)

    def list(self, prefix: str) -> list[str]:
        """Full secret paths under ``prefix`` (``""`` for all), sorted."""
        prefix = prefix.removesuffix("/")  # "a/" names the folder a; "/a" stays invalid
        folder = self._folder_for(check_path(prefix)) if prefix else self._root
        with self._lock:
            if not folder.is_dir():
                return []
            base = f"{prefix}/" if prefix else ""
            return sorted(base + rel for rel in _walk(folder))

    def new_data_key(self) -> DataKey:
        """32 random bytes, wrapped as ``local:v1:<urlsafe base64(nonce || AES-GCM)>``."""
        key = os.urandom(_KEY_BYTES)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._wrap_key()).encrypt(nonce, key, WRAP_PREFIX.encode())
        return DataKey(key, WRAP_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode())

    def unwrap_data_key(self, wrapped: str) -> bytes:
        """The plaintext of a wrapped key; :class:`SecretStoreError` if it was altered."""
        if not wrapped.startswith(WRAP_PREFIX):
            raise SecretStoreError("not a data key wrapped by the local secret store")
        try:
            blob = base64.b64decode(wrapped[len(WRAP_PREFIX):], altchars=b"-_", validate=True)
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            return AESGCM(self._wrap_key()).decrypt(nonce, sealed, WRAP_PREFIX.encode())
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise SecretStoreError("wrapped data key is corrupt or from another store") from exc

    def check(self) -> None:
        """Raise :class:`SecretStoreUnavailable` unless the folder is readable and writable."""
        with self._lock:
            try:
                self._master_key()
                fd, probe = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=self._root)
                os.close(fd)
                os.unlink(probe)
                os.listdir(self._root)
            except SecretStoreError as exc:
                raise SecretStoreUnavailable(str(exc)) from exc
            except OSError as exc:
                raise SecretStoreUnavailable(
                    f"local secret folder {str(self._root)!r} is not usable: {exc.strerror}"
                ) from exc

    def close(self) -> None:
        """Forget the cached master key."""
        with self._lock:
            self._master = None

    # -- internals ---------------------------------------------------------------------

    def _file_for(self, path: str) -> Path:
        *folders, name = path.split("/")
        return self._root.joinpath(*(f + FOLDER_SUFFIX for f in folders), name + FILE_SUFFIX)

    def _folder_for(self, prefix: str) -> Path:
        return self._root.joinpath(*(f + FOLDER_SUFFIX for f in prefix.split("/")))

    def _make_folders(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _prune(self, folder: Path) -> None:
        while folder != self._root and self._root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): stop pruning
                return
            folder = folder.parent

    def _master_key(self) -> bytes:
        with self._lock:
            if self._master is None:
                self._master = _load_or_create_master_key(self._root)
            return self._master

    def _wrap_key(self) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"calgate data-key wrap")
        return hkdf.derive(self._master_key())


def _flat_strings(data: Mapping[str, str]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise TypeError("secret values are flat maps of strings to strings")
    return dict(data)


def _open_secret(master: bytes, path: str, blob: bytes) -> dict[str, str]:
    header = len(_MAGIC) + _NONCE_BYTES
    if not blob.startswith(_MAGIC) or len(blob) < header:
        raise SecretStoreError(f"secret file for {path!r} is not in the expected format")
    try:
        plaintext = AESGCM(master).decrypt(blob[len(_MAGIC):header], blob[header:], path.encode())
        value = json.loads(plaintext)
    except (InvalidTag, ValueError) as exc:
        raise SecretStoreError(f"secret file for {path!r} failed authentication") from exc
    if not isinstance(value, dict):
        raise SecretStoreError(f"secret at {path!r} is not a map")
    return {str(k): str(v) for k, v in value.items()}


def _load_or_create_master_key(root: Path) -> bytes:
    """Read ``master.key``, creating folder (0700) and key (0600) on first use."""
    key_file = root / MASTER_KEY_FILE
    try:
        if not key_file.exists():
            _refuse_orphaned_secrets(root)
            # First use: the folder is ours. mkdir's mode is filtered through the umask,
            # and a pre-existing folder (a mounted volume) may be wider, so chmod it.
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(root, 0o700)
            _create_exclusively(key_file, os.urandom(_KEY_BYTES))
        key = key_file.read_bytes()
    except OSError as exc:
        raise SecretStoreUnavailable(
            f"cannot open the local master key in {str(root)!r}: {exc.strerror}") from exc
    if len(key) != _KEY_BYTES:
        raise SecretStoreUnavailable(f"{str(key_file)!r} does not hold a 256-bit key")
    return key


def _refuse_orphaned_secrets(root: Path) -> None:
    """A lost master key must not be silently replaced: old secrets would stay unreadable
    and new ones would be written under a different key."""
    if not root.is_dir():
        return
    with os.scandir(root) as entries:
        if any(e.name.endswith((FILE_SUFFIX, FOLDER_SUFFIX)) for e in entries):
            raise SecretStoreUnavailable(
                f"{MASTER_KEY_FILE} is missing from {str(root)!r} but secrets exist; restore it")


def _create_exclusively(target: Path, content: bytes) -> None:
    """Write a complete file, then hard-link it into place: readers never see it half
    written, and when two processes race, the first link wins and the other reads it."""
    fd, tmp = tempfile.mkstemp(prefix=".master-", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)
    finally:
        os.unlink(tmp)
    _fsync_folder(target.parent)


def _write_atomically(target: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp already created it 0600
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable across a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _shred(target: Path) -> None:
    """Best effort: on copy-on-write or journalling file systems old blocks may survive."""
    with open(target, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())
    target.unlink()
    _fsync_folder(target.parent)


def _walk(folder: Path) -> Iterator[str]:
    with os.scandir(folder) as entries:
        found = list(entries)
    for entry in found:
        if entry.is_dir(follow_symlinks=False) and entry.name.endswith(FOLDER_SUFFIX):
            name = entry.name[: -len(FOLDER_SUFFIX)]
            yield from (f"{name}/{rel}" for rel in _walk(Path(entry.path)))
        elif entry.is_file(follow_symlinks=False) and entry.name.endswith(FILE_SUFFIX):
            yield entry.name[: -len(FILE_SUFFIX)]
