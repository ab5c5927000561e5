"""The embedded LocalSecretStore: file layout, permissions, encryption, shredding."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.secrets import (
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    open_secret_store,
)
from gateway.secrets.local import LocalSecretStore
from gateway.settings import Settings

PATH = "profiles/pro_abc/credentials"
FILE = Path("profiles.d/pro_abc.d/credentials.secret")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "secrets"


@pytest.fixture
def store(root: Path) -> LocalSecretStore:
    return LocalSecretStore(root)


def decrypt(master: bytes, path: str, blob: bytes) -> bytes:
    """Decrypt a secret file the way the store lays it out: magic, nonce, AES-GCM."""
    return AESGCM(master).decrypt(blob[4:16], blob[16:], path.encode())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_master_key_and_folder_are_private(store: LocalSecretStore, root: Path) -> None:
    assert not root.exists()  # nothing happens before first use
    store.put(PATH, {"k": "v"})
    assert mode(root) == 0o700
    assert mode(root / "master.key") == 0o600
    assert len((root / "master.key").read_bytes()) == 32
    assert mode(root / FILE) == 0o600
    assert mode(root / FILE.parent) == 0o700


def test_existing_folder_is_tightened_on_first_use(root: Path) -> None:
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    LocalSecretStore(root).check()
    assert mode(root) == 0o700


def test_file_layout_and_ciphertext(store: LocalSecretStore, root: Path) -> None:
    store.put(PATH, {"password": "hunter2-plaintext"})
    blob = (root / FILE).read_bytes()
    assert b"hunter2-plaintext" not in blob
    assert decrypt((root / "master.key").read_bytes(), PATH, blob) == (
        b'{"password": "hunter2-plaintext"}')
    leftovers = [p.name for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_file_moved_to_another_path_does_not_decrypt(store: LocalSecretStore, root: Path) -> None:
    store.put("a/one", {"k": "v"})
    store.put("a/two", {"k": "w"})
    os.replace(root / "a.d/one.secret", root / "a.d/two.secret")
    with pytest.raises(SecretStoreError, match="failed authentication"):
        store.get("a/two")


def test_tampered_file_raises(store: LocalSecretStore, root: Path) -> None:
    store.put(PATH, {"k": "v"})
    blob = bytearray((root / FILE).read_bytes())
    blob[-1] ^= 1
    (root / FILE).write_bytes(bytes(blob))
    with pytest.raises(SecretStoreError):
        store.get(PATH)
    (root / FILE).write_bytes(b"junk")
    with pytest.raises(SecretStoreError, match="format"):
        store.find(PATH)


def test_delete_shreds_then_unlinks(store: LocalSecretStore, root: Path, tmp_path: Path) -> None:
    store.put(PATH, {"password": "v1"})
    store.put(PATH, {"password": "v2"})
    witness = tmp_path / "witness"  # a second name for the same inode sees the overwrite
    os.link(root / FILE, witness)
    before = witness.read_bytes()

    store.delete(PATH)

    assert not (root / FILE).exists()
    assert not (root / "profiles.d").exists()  # empty parents are pruned
    assert sorted(p.name for p in root.iterdir()) == ["master.key"]
    after = witness.read_bytes()
    assert len(after) == len(before) and after != before
    with pytest.raises(InvalidTag):
        decrypt((root / "master.key").read_bytes(), PATH, after)
    assert store.find(PATH) is None


def test_delete_keeps_non_empty_parents(store: LocalSecretStore, root: Path) -> None:
    store.put("p/a", {"k": "v"})
    store.put("p/b", {"k": "v"})
    store.delete("p/a")
    assert (root / "p.d/b.secret").exists()
    assert store.list("p") == ["p/b"]


def test_names_cannot_collide(store: LocalSecretStore) -> None:
    paths = ["a", "a/b", "a.secret", "a.secret/b", "a.d", "a.d/b", ".hidden", "x.tmp"]
    for path in paths:
        store.put(path, {"p": path})
    for path in paths:
        assert store.get(path) == {"p": path}
    assert store.list("") == sorted(paths)


def test_data_keys_need_the_same_master_key(root: Path, tmp_path: Path) -> None:
    key = LocalSecretStore(root).new_data_key()
    assert key.wrapped.startswith("local:v1:")
    assert LocalSecretStore(root).unwrap_data_key(key.wrapped) == key.plaintext
    with pytest.raises(SecretStoreError):
        LocalSecretStore(tmp_path / "other").unwrap_data_key(key.wrapped)


def test_vault_wrapped_keys_are_refused(store: LocalSecretStore) -> None:
    with pytest.raises(SecretStoreError, match="not a data key"):
        store.unwrap_data_key("vault:v1:AAAA")


def test_master_key_is_created_once_across_instances(root: Path) -> None:
    stores = [LocalSecretStore(root) for _ in range(8)]
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda s=s: keys.append(s.new_data_key().wrapped.encode()))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    master = (root / "master.key").read_bytes()
    assert all(s.unwrap_data_key(k.decode()) for s in stores for k in keys)
    assert (root / "master.key").read_bytes() == master
    assert [p.name for p in root.iterdir()] == ["master.key"]


def test_corrupt_master_key_is_unavailable(root: Path) -> None:
    root.mkdir()
    (root / "master.key").write_bytes(b"short")
    store = LocalSecretStore(root)
    with pytest.raises(SecretStoreUnavailable, match="256-bit"):
        store.check()
    with pytest.raises(SecretStoreUnavailable):
        store.put("p", {"k": "v"})


def test_lost_master_key_is_not_silently_replaced(store: LocalSecretStore, root: Path) -> None:
    store.put(PATH, {"k": "v"})
    (root / "master.key").unlink()
    fresh = LocalSecretStore(root)
    with pytest.raises(SecretStoreUnavailable, match="restore it"):
        fresh.put("other", {"k": "v"})
    assert not (root / "master.key").exists()


def test_check_fails_when_the_folder_is_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SecretStoreUnavailable):
        LocalSecretStore(blocker).check()
    with pytest.raises(SecretStoreUnavailable):
        LocalSecretStore(blocker / "below").check()


def test_get_and_delete_of_missing_paths(store: LocalSecretStore) -> None:
    with pytest.raises(SecretNotFound):
        store.get("nope")
    assert store.find("nope/deeper") is None
    store.delete("nope")
    assert store.list("nope") == []


def test_open_secret_store_defaults_to_local(tmp_path: Path) -> None:
    store = open_secret_store(Settings().replace(data_dir=tmp_path))
    assert isinstance(store, LocalSecretStore)
    store.put("p", {"k": "v"})
    assert (tmp_path / "secrets" / "p.secret").exists()
    custom = open_secret_store(Settings().replace(local_secret_dir=tmp_path / "custom"))
    custom.check()
    assert (tmp_path / "custom" / "master.key").exists()


def test_local_backend_does_not_import_hvac(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gateway.secrets import open_secret_store\n"
        "from gateway.settings import Settings\n"
        f"open_secret_store(Settings().replace(data_dir=Path({str(tmp_path)!r}))).check()\n"
        "assert 'hvac' not in sys.modules and 'requests' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
