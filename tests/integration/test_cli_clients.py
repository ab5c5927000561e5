"""`calgate migrate` and `calgate clients …` as an operator runs them, on both databases."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.cli.main import main
from oauth_server.tables import clients


def calgate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``calgate ARGS`` with ``env`` as its whole environment, run in this process: the
    same ``main`` the console script calls, without paying an interpreter start and the
    gateway's imports for every command (the README test runs the real command)."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse refusing the arguments
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["calgate", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
    return keep | {"CALGATE_DATABASE_URL": db_url, "CALGATE_DATA_DIR": str(tmp_path / "data")}


def test_client_lifecycle(env, db_url):
    assert calgate(env, "migrate").returncode == 0
    created = calgate(env, "clients", "create", "--name", "Mentor Hub",
                      "--redirect-uri", "https://mentor.example/cb",
                      "--scope", "read_account create_event delete_event",
                      "--accent-color", "#7b2cbf", "--logo-url", "https://mentor.example/l.png")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    secret = client["client_secret"]
    assert len(secret) >= 43 and client["accent_color"] == "#7b2cbf"
    assert "Store the client_secret now" in created.stderr

    listed = json.loads(calgate(env, "clients", "list").stdout)
    assert [c["client_id"] for c in listed] == [client["client_id"]]
    assert all("client_secret" not in c for c in listed)

    # The secret itself is nowhere in the database, only a keyed digest of it.
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(clients)).one()._mapping
    engine.dispose()
    assert secret not in json.dumps({k: str(v) for k, v in stored.items()})

    rotated = json.loads(calgate(env, "clients", "rotate-secret", client["client_id"]).stdout)
    assert rotated["client_secret"] != secret

    shown = json.loads(calgate(env, "clients", "show", client["client_id"]).stdout)
    assert shown["redirect_uris"] == ["https://mentor.example/cb"]

    deleted = calgate(env, "clients", "delete", client["client_id"])
    assert deleted.returncode == 0
    assert json.loads(calgate(env, "clients", "list").stdout) == []
    assert calgate(env, "clients", "show", client["client_id"]).returncode == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--redirect-uri", "http://app.example/cb"], "http is allowed only for loopback"),
    (["--redirect-uri", "https://app.example/cb#x"], "fragment"),
    (["--redirect-uri", "https://app.example/cb", "--scope", "admin"], "unknown scope"),
    (["--redirect-uri", "https://app.example/cb", "--accent-color", "purple"], "accent"),
])
def test_bad_registrations_are_refused_with_the_reason(env, args, message):
    assert calgate(env, "migrate").returncode == 0
    base = ["clients", "create", "--name", "X"]
    if "--scope" not in args:
        args = [*args, "--scope", "read_account"]
    result = calgate(env, *base, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_rotate_secret_with_overlap_keeps_both_secrets(env, db_url, tmp_path):
    from gateway.app import Gateway
    from gateway.settings import Settings

    assert calgate(env, "migrate").returncode == 0
    created = json.loads(calgate(env, "clients", "create", "--name", "Mentor Hub",
                                 "--redirect-uri", "https://mentor.example/cb",
                                 "--scope", "read_account").stdout)
    client_id, old = created["client_id"], created["client_secret"]

    refused = calgate(env, "clients", "rotate-secret", client_id, "--overlap", "-5")
    assert refused.returncode == 1 and "overlap" in refused.stderr

    result = calgate(env, "clients", "rotate-secret", client_id, "--overlap", "600")
    assert result.returncode == 0, result.stderr
    rotated = json.loads(result.stdout)
    new = rotated["client_secret"]
    assert new != old and rotated["overlap_seconds"] == 600
    assert "stays valid for 600 s" in result.stderr

    gateway = Gateway.build(Settings().replace(database_url=db_url, data_dir=tmp_path / "data"))
    try:
        assert gateway.signing is not None
        assert gateway.signing.active(client_id) == [new, old]
        client = gateway.oauth.registry.find(client_id)
        keys = gateway.oauth.server.keys
        assert client is not None
        assert client.check_client_secret(old, keys) and client.check_client_secret(new, keys)
        assert client.previous_secret_until is not None
    finally:
        gateway.close()

    # Without --overlap the previous secret ends at once, in the database and the store.
    newest = json.loads(calgate(env, "clients", "rotate-secret", client_id).stdout)
    assert newest["overlap_seconds"] == 0
    gateway = Gateway.build(Settings().replace(database_url=db_url, data_dir=tmp_path / "data"))
    try:
        assert gateway.signing is not None
        assert gateway.signing.active(client_id) == [newest["client_secret"]]
        assert gateway.delete_client(client_id)
        assert gateway.signing.active(client_id) == []
        assert gateway.secrets.list("clients") == []
    finally:
        gateway.close()


def test_rotate_refresh_tokens_flag_round_trip(env, db_url):
    """``clients create --rotate-refresh-tokens`` and ``clients update --[no-]rotate-…``: what
    the CLI shows is what is stored; confidential clients keep their refresh token by
    default, public clients always rotate and cannot be told otherwise."""
    assert calgate(env, "migrate").returncode == 0
    base = ["clients", "create", "--redirect-uri", "https://app.example/cb",
            "--scope", "read_account"]
    kept = json.loads(calgate(env, *base, "--name", "Kept").stdout)
    rotating = json.loads(calgate(env, *base, "--name", "Rotating",
                                  "--rotate-refresh-tokens").stdout)
    public = json.loads(calgate(env, *base, "--name", "Public", "--public").stdout)
    assert (kept["rotate_refresh_tokens"], rotating["rotate_refresh_tokens"],
            public["rotate_refresh_tokens"]) == (False, True, True)

    def stored(client_id: str) -> bool:
        engine = create_engine(db_url)
        with engine.connect() as conn:
            value = conn.execute(select(clients.c.rotate_refresh_tokens)
                                 .where(clients.c.client_id == client_id)).scalar_one()
        engine.dispose()
        return bool(value)

    assert (stored(kept["client_id"]), stored(rotating["client_id"])) == (False, True)
    on = calgate(env, "clients", "update", kept["client_id"], "--rotate-refresh-tokens")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["rotate_refresh_tokens"] is True and stored(kept["client_id"])
    shown = json.loads(calgate(env, "clients", "show", kept["client_id"]).stdout)
    assert shown["rotate_refresh_tokens"] is True
    off = calgate(env, "clients", "update", kept["client_id"], "--no-rotate-refresh-tokens")
    assert json.loads(off.stdout)["rotate_refresh_tokens"] is False
    assert not stored(kept["client_id"])
    refused = calgate(env, "clients", "update", public["client_id"],
                      "--no-rotate-refresh-tokens")
    assert refused.returncode == 1 and "always rotates" in refused.stderr
    missing = calgate(env, "clients", "update", "cli_nosuchclient", "--rotate-refresh-tokens")
    assert missing.returncode == 1 and "no client" in missing.stderr
