"""The SecretStore contract on both backends, and the Vault backend against real OpenBao.

Behavioural tests run twice: ``local`` on tmp_path and ``vault`` on the session's OpenBao
dev server (a fresh KV prefix per test). Vault-only tests prove destruction with a raw hvac
client, and exercise token, AppRole and Kubernetes auth, TLS and an unreachable server.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gateway.secrets import (
    SecretNotFound,
    SecretStore,
    SecretStoreError,
    SecretStoreUnavailable,
    open_secret_store,
)
from gateway.secrets.vault import VaultSecretStore, bootstrap_vault
from gateway.settings import Settings
from tests.support.baodev import OpenBaoDevServer, free_port

KV_MOUNT = "secret"


@pytest.fixture
def bao_root(openbao: OpenBaoDevServer) -> Iterator[hvac.Client]:
    client = hvac.Client(openbao.url, token=openbao.root_token)
    yield client
    client.adapter.close()


@pytest.fixture
def make_vault_store() -> Iterator[Callable[[Settings], VaultSecretStore]]:
    """Builds stores from settings and closes them all at teardown."""
    made: list[VaultSecretStore] = []

    def make(settings: Settings) -> VaultSecretStore:
        made.append(VaultSecretStore.from_settings(settings))
        return made[-1]

    yield make
    for each in made:
        each.close()


def make_settings(url: str, **changes: Any) -> Settings:
    changes.setdefault("vault_kv_prefix", f"test-{uuid.uuid4().hex[:12]}")
    return Settings().replace(secret_backend="vault", vault_addr=url, **changes)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the contract, on both backends ------------------------------------------------------


def test_put_get_round_trip(store: SecretStore) -> None:
    value = {"username": "alice", "password": "hunter2", "empty": ""}
    store.put("profiles/pro_1/credentials", value)
    assert store.get("profiles/pro_1/credentials") == value
    assert store.find("profiles/pro_1/credentials") == value


def test_find_returns_none_for_missing(store: SecretStore) -> None:
    assert store.find("profiles/absent") is None


def test_get_missing_raises_secret_not_found(store: SecretStore) -> None:
    with pytest.raises(SecretNotFound):
        store.get("profiles/absent")


def test_overwrite_returns_newest(store: SecretStore) -> None:
    store.put("apps/google", {"client_secret": "old"})
    store.put("apps/google", {"client_secret": "new", "extra": "x"})
    assert store.get("apps/google") == {"client_secret": "new", "extra": "x"}


def test_delete_removes_and_is_idempotent(store: SecretStore) -> None:
    store.put("profiles/p/credentials", {"token": "t"})
    store.delete("profiles/p/credentials")
    assert store.find("profiles/p/credentials") is None
    with pytest.raises(SecretNotFound):
        store.get("profiles/p/credentials")
    store.delete("profiles/p/credentials")
    store.delete("never/existed")
    assert store.list("") == []


def test_list_returns_full_paths_under_prefix(store: SecretStore) -> None:
    for path in ["a/b", "a/c/d", "a", "x"]:
        store.put(path, {"v": path})
    assert store.list("a") == ["a/b", "a/c/d"]
    assert store.list("a/") == ["a/b", "a/c/d"]
    assert store.list("") == ["a", "a/b", "a/c/d", "x"]
    assert store.list("nothing") == []
    assert store.get("a") == {"v": "a"}


def test_data_key_round_trip_never_shows_plaintext(store: SecretStore) -> None:
    key = store.new_data_key()
    assert len(key.plaintext) == 32
    assert store.unwrap_data_key(key.wrapped) == key.plaintext
    for form in (base64.b64encode, base64.urlsafe_b64encode, base64.b16encode):
        assert form(key.plaintext).decode().rstrip("=") not in key.wrapped
        assert form(key.plaintext).decode().lower().rstrip("=") not in key.wrapped.lower()
    assert key.plaintext.decode("latin-1") not in key.wrapped
    assert store.new_data_key().plaintext != key.plaintext


def _flip_middle(wrapped: str) -> str:
    i = len(wrapped) // 2 + 5
    return wrapped[:i] + ("A" if wrapped[i] != "A" else "B") + wrapped[i + 1:]


@pytest.mark.parametrize("tamper", [
    pytest.param(_flip_middle, id="flipped"),
    pytest.param(lambda w: w[:-8], id="truncated"),
    pytest.param(lambda w: w + "AAAA", id="extended"),
    pytest.param(lambda w: w.split(":", 2)[0] + ":v1:!!notbase64!!", id="garbage"),
    pytest.param(lambda w: "other:v1:" + w.split(":", 2)[2], id="foreign-prefix"),
])
def test_tampered_wrapped_key_raises(store: SecretStore, tamper: Callable[[str], str]) -> None:
    wrapped = store.new_data_key().wrapped
    with pytest.raises(SecretStoreError):
        store.unwrap_data_key(tamper(wrapped))


@pytest.mark.parametrize("bad", ["../x", "/abs", "a//b", "", "a/", "a/../b", "./x", "a b", "é"])
def test_bad_paths_raise_value_error(store: SecretStore, bad: str) -> None:
    for call in (store.get, store.find, store.delete, lambda p: store.put(p, {"k": "v"})):
        with pytest.raises(ValueError):
            call(bad)
    if bad not in {"", "a/"}:  # list("") is everything, list("a/") the folder a
        with pytest.raises(ValueError):
            store.list(bad)


def test_values_must_be_flat_strings(store: SecretStore) -> None:
    with pytest.raises(TypeError):
        store.put("p", {"n": 1})  # type: ignore[dict-item]


def test_check_passes_on_a_working_store(store: SecretStore) -> None:
    store.check()


def test_concurrent_use_from_threads(store: SecretStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                store.put(f"threads/t{n}", {"i": str(i)})
                assert store.get(f"threads/t{n}") == {"i": str(i)}
                assert len(store.unwrap_data_key(store.new_data_key().wrapped)) == 32
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.list("threads") == [f"threads/t{n}" for n in range(6)]


# -- Vault only: versions and destruction, checked with a raw hvac client ---------------


@pytest.mark.vault
def test_vault_overwrite_creates_a_new_version(
    vault_store: VaultSecretStore, bao_root: hvac.Client,
) -> None:
    vault_store.put("apps/graph", {"secret": "one"})
    vault_store.put("apps/graph", {"secret": "two"})
    meta = bao_root.secrets.kv.v2.read_secret_metadata(
        f"{vault_store.kv_prefix}/apps/graph", mount_point=KV_MOUNT)["data"]
    assert sorted(meta["versions"]) == ["1", "2"]
    assert meta["current_version"] == 2
    assert vault_store.get("apps/graph") == {"secret": "two"}


@pytest.mark.vault
def test_vault_delete_destroys_every_version(
    vault_store: VaultSecretStore, bao_root: hvac.Client,
) -> None:
    full = f"{vault_store.kv_prefix}/profiles/p/credentials"
    kv = bao_root.secrets.kv.v2
    vault_store.put("profiles/p/credentials", {"password": "v1"})
    vault_store.put("profiles/p/credentials", {"password": "v2"})
    old = kv.read_secret_version(full, version=1, mount_point=KV_MOUNT,
                                 raise_on_deleted_version=True)
    assert old["data"]["data"] == {"password": "v1"}

    vault_store.delete("profiles/p/credentials")

    # raise_on_deleted_version=False: hvac would return a merely soft-deleted version, so
    # an InvalidPath here means no version and no metadata survive.
    for version in (1, 2):
        with pytest.raises(hvac.exceptions.InvalidPath):
            kv.read_secret_version(full, version=version, mount_point=KV_MOUNT,
                                   raise_on_deleted_version=False)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(full, mount_point=KV_MOUNT)


# -- Vault only: auth ---------------------------------------------------------------------


def _app_policy(prefix: str) -> str:
    return "\n".join([
        f'path "{KV_MOUNT}/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}',
        f'path "{KV_MOUNT}/metadata/{prefix}" {{ capabilities = ["list"] }}',
        f'path "{KV_MOUNT}/metadata/{prefix}/*" {{ capabilities = ["read", "list", "delete"] }}',
        'path "transit/keys/calgate-data-keys" { capabilities = ["read"] }',
        'path "transit/datakey/plaintext/calgate-data-keys" { capabilities = ["update"] }',
        'path "transit/decrypt/calgate-data-keys" { capabilities = ["update"] }',
    ])


def _make_policy(root: hvac.Client, prefix: str) -> str:
    name = f"calgate-{prefix}"
    root.sys.create_or_update_policy(name, _app_policy(prefix))
    return name


def _approle(root: hvac.Client, policy: str, **options: Any) -> tuple[str, str]:
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    role = f"role-{uuid.uuid4().hex[:8]}"
    root.auth.approle.create_or_update_approle(role, token_policies=[policy], **options)
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    return role_id, root.auth.approle.generate_secret_id(role)["data"]["secret_id"]


@pytest.mark.vault
def test_vault_approle_auth_end_to_end(
    openbao: OpenBaoDevServer, bao_root: hvac.Client, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    settings = make_settings(openbao.url, vault_auth="approle")
    role_id, secret_id = _approle(bao_root, _make_policy(bao_root, settings.vault_kv_prefix))
    settings = settings.replace(
        vault_role_id=role_id, vault_secret_id_file=write(tmp_path / "sid", secret_id))
    store = make_vault_store(settings)
    store.check()
    store.put("profiles/p", {"password": "pw"})
    assert store.get("profiles/p") == {"password": "pw"}
    assert store.list("") == ["profiles/p"]
    key = store.new_data_key()
    assert store.unwrap_data_key(key.wrapped) == key.plaintext
    store.delete("profiles/p")
    assert store.find("profiles/p") is None

    outside = make_vault_store(settings.replace(vault_kv_prefix="someone-else"))
    with pytest.raises(SecretStoreUnavailable) as caught:
        outside.put("profiles/p", {"password": "must-not-leak"})
    assert "must-not-leak" not in str(caught.value)


@pytest.mark.vault
def test_vault_approle_logs_in_again_after_403(
    openbao: OpenBaoDevServer, bao_root: hvac.Client, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore], caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(openbao.url, vault_auth="approle")
    # Each token dies after 3 requests, so the loop must log in again several times.
    role_id, secret_id = _approle(
        bao_root, _make_policy(bao_root, settings.vault_kv_prefix), token_num_uses=3)
    store = make_vault_store(settings.replace(
        vault_role_id=role_id, vault_secret_id_file=write(tmp_path / "sid", secret_id)))
    with caplog.at_level(logging.INFO, logger="gateway.secrets.vault"):
        for i in range(8):
            store.put("p", {"i": str(i)})
        assert store.get("p") == {"i": "7"}
    assert sum("authenticating again" in r.message for r in caplog.records) >= 2


@pytest.mark.vault
def test_vault_approle_bad_secret_id_is_unavailable(
    openbao: OpenBaoDevServer, bao_root: hvac.Client, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    settings = make_settings(openbao.url, vault_auth="approle")
    role_id, _ = _approle(bao_root, _make_policy(bao_root, settings.vault_kv_prefix))
    store = make_vault_store(settings.replace(
        vault_role_id=role_id, vault_secret_id_file=write(tmp_path / "sid", "wrong")))
    with pytest.raises(SecretStoreUnavailable, match="login failed"):
        store.check()


@pytest.mark.vault
def test_vault_token_file_auth_and_rotation(
    openbao: OpenBaoDevServer, bao_root: hvac.Client, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    settings = make_settings(openbao.url, vault_auth="token")
    policy = _make_policy(bao_root, settings.vault_kv_prefix)
    first = bao_root.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    token_file = write(tmp_path / "token", first + "\n")
    store = make_vault_store(settings.replace(vault_token_file=token_file))
    store.put("p", {"k": "v"})

    # A Vault Agent sink replaces the file; the store re-reads it when Vault answers 403.
    bao_root.auth.token.revoke(first)
    second = bao_root.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    write(token_file, second)
    assert store.get("p") == {"k": "v"}

    bao_root.auth.token.revoke(second)
    with pytest.raises(SecretStoreUnavailable):
        store.get("p")


@pytest.mark.vault
def test_vault_missing_token_file_is_unavailable(
    openbao: OpenBaoDevServer, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    store = make_vault_store(make_settings(
        openbao.url, vault_auth="token", vault_token_file=tmp_path / "absent"))
    with pytest.raises(SecretStoreUnavailable, match="CALGATE_VAULT_TOKEN_FILE"):
        store.check()


# -- Vault only: Kubernetes auth, with a fake TokenReview API instead of a cluster ---------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _service_account_jwt(key: ec.EllipticCurvePrivateKey, namespace: str, name: str) -> str:
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
    }
    signing_input = ".".join(
        _b64url(json.dumps(part).encode()) for part in ({"alg": "ES256", "typ": "JWT"}, claims))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _self_signed_pem(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def fake_token_review() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for the API server's TokenReview endpoint that approves any
    token as system:serviceaccount:calgate:calgate; yields (url, recorded requests)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append({"path": self.path, "body": json.loads(
                self.rfile.read(int(self.headers["Content-Length"])))})
            user = {"username": "system:serviceaccount:calgate:calgate", "uid": "uid-1"}
            body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                               "status": {"authenticated": True, "user": user}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.vault
def test_vault_kubernetes_auth_reads_the_jwt_file(
    openbao: OpenBaoDevServer, bao_root: hvac.Client, tmp_path: Path,
    fake_token_review: tuple[str, list[dict[str, Any]]],
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    api_url, seen = fake_token_review
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    key = ec.generate_private_key(ec.SECP256R1())
    bao_root.sys.enable_auth_method("kubernetes", path=mount)
    bao_root.auth.kubernetes.configure(
        api_url, kubernetes_ca_cert=_self_signed_pem(key), disable_local_ca_jwt=True,
        mount_point=mount)
    settings = make_settings(openbao.url, vault_auth="kubernetes", vault_k8s_mount=mount,
                             vault_k8s_role="calgate-app")
    bao_root.auth.kubernetes.create_role(
        "calgate-app", bound_service_account_names=["calgate"],
        bound_service_account_namespaces=["calgate"],
        policies=[_make_policy(bao_root, settings.vault_kv_prefix)], mount_point=mount)
    jwt = _service_account_jwt(key, "calgate", "calgate")
    store = make_vault_store(settings.replace(
        vault_k8s_token_file=write(tmp_path / "sa-token", jwt)))

    store.put("p", {"k": "v"})
    assert store.get("p") == {"k": "v"}
    assert [r["body"]["spec"]["token"] for r in seen] == [jwt]
    assert seen[0]["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"


# -- Vault only: availability, Transit set-up, TLS ----------------------------------------


@pytest.mark.vault
def test_vault_unreachable_check_raises_unavailable(
    tmp_path: Path, make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    store = make_vault_store(make_settings(
        f"http://127.0.0.1:{free_port()}", vault_token_file=write(tmp_path / "t", "x")))
    with pytest.raises(SecretStoreUnavailable, match="cannot reach Vault"):
        store.check()
    with pytest.raises(SecretStoreUnavailable):
        store.put("p", {"k": "v"})


@pytest.mark.vault
def test_vault_stopped_server_check_raises_unavailable(
    tmp_path: Path, make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    with OpenBaoDevServer() as bao:
        settings = make_settings(bao.url, vault_token_file=write(tmp_path / "t", bao.root_token))
        root = hvac.Client(bao.url, token=bao.root_token)
        bootstrap_vault(root, settings)
        root.adapter.close()
        store = make_vault_store(settings)
        store.check()
        bao.stop()
        with pytest.raises(SecretStoreUnavailable):
            store.check()


@pytest.mark.vault
def test_vault_transit_not_enabled_says_so(
    openbao: OpenBaoDevServer, tmp_path: Path,
    make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    store = make_vault_store(make_settings(
        openbao.url, vault_transit_mount="transit-missing",
        vault_token_file=write(tmp_path / "t", openbao.root_token)))
    with pytest.raises(SecretStoreUnavailable, match="not enabled"):
        store.new_data_key()
    with pytest.raises(SecretStoreUnavailable, match="not enabled"):
        store.check()


@pytest.mark.vault
def test_vault_tls_is_verified_against_the_ca_file(
    tmp_path: Path, make_vault_store: Callable[[Settings], VaultSecretStore],
) -> None:
    with OpenBaoDevServer(tls=True) as bao:
        token = write(tmp_path / "t", bao.root_token)
        settings = make_settings(bao.url, vault_token_file=token, vault_ca_file=bao.ca_file)
        root = hvac.Client(bao.url, token=bao.root_token, verify=str(bao.ca_file))
        bootstrap_vault(root, settings)
        root.adapter.close()
        make_vault_store(settings).check()
        untrusted = make_vault_store(settings.replace(vault_ca_file=None))
        with pytest.raises(SecretStoreUnavailable):
            untrusted.check()


@pytest.mark.vault
def test_open_secret_store_builds_vault_lazily(tmp_path: Path) -> None:
    settings = make_settings(f"http://127.0.0.1:{free_port()}", vault_auth="approle")
    store = open_secret_store(settings)  # no server, no credentials: nothing is read yet
    assert isinstance(store, VaultSecretStore)
    store.close()
