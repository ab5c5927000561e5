"""Issue 11: the client-secret throttle keys on the address the trusted-proxy configuration
yields (the right-most X-Forwarded-For entry outside the trusted proxies), never on one the
caller wrote (OAUTH.md 47).

A real ``calgate serve`` (uvicorn's ProxyHeadersMiddleware with the settings' proxies)
trusts 127.0.0.1 as its proxy. Requests sent from 127.0.0.1 play the proxy: the caller's
own X-Forwarded-For first, then the address the proxy saw. Requests sent from 127.0.0.2
are a caller reaching the server directly, whom nobody vouches for.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.e2e_server import REPO_ROOT, GatewayServer, RegisteredApp

ATTACKER = "198.51.100.66"  # what the proxy saw (TEST-NET-2)
VICTIM = "203.0.113.7"  # another client of the same app, behind the same proxy
LIMIT = 20  # CALGATE_CLIENT_AUTH_FAILURES_PER_MINUTE default: wrong secrets per minute and source


class ServedGateway(GatewayServer):
    """``calgate serve`` itself, so that its own proxy-header configuration is under test."""

    def _spawn(self) -> None:
        import subprocess

        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli.main", "serve"], cwd=REPO_ROOT,
                env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[ServedGateway, RegisteredApp]]:
    with ServedGateway(tmp_path, database_url=db_url, env={
            "CALGATE_FORWARDED_ALLOW_IPS": "127.0.0.1", "CALGATE_WORKER_MODE": "external",
            "CALGATE_HOST": "127.0.0.1"}) as server:
        app = server.register_client(name="Mentor Hub", redirect_uris=["https://app.example/cb"],
                                     scopes=["read_account"])
        yield server, app


def client_from(source: str, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=source))


def guess(http: httpx.Client, app: RegisteredApp, secret: str,
          forwarded_for: str | None) -> httpx.Response:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return http.post("/oauth/token", headers=headers, data={
        "grant_type": "refresh_token", "refresh_token": "unknown",
        "client_id": app.client_id, "client_secret": secret})


def spoofed() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


def test_a_hundred_guesses_through_the_proxy_are_throttled_after_the_twentieth(served):
    server, app = served
    with client_from("127.0.0.1", server.url) as proxy:
        statuses = []
        for n in range(1, 101):
            r = guess(proxy, app, f"wrong-{n}", f"{spoofed()}, {ATTACKER}")
            statuses.append(r.status_code)
            if n <= LIMIT:
                assert r.status_code == 401, (n, r.text)
                assert r.json()["error"] == "invalid_client"
            else:
                assert r.status_code == 429, (n, r.text)
                assert int(r.headers["retry-after"]) >= 1
        assert statuses.count(401) == LIMIT and statuses.count(429) == 100 - LIMIT
        # Another client of the same app behind the same proxy is not locked out.
        r = guess(proxy, app, app.secret or "", f"{spoofed()}, {VICTIM}")
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert guess(proxy, app, "wrong", VICTIM).status_code == 401


def test_a_spoofed_header_from_an_untrusted_source_locks_out_only_that_source(served):
    server, app = served
    with client_from("127.0.0.2", server.url) as direct:
        for n in range(1, LIMIT + 6):
            r = guess(direct, app, f"wrong-{n}", VICTIM)  # claims to be the victim
            assert r.status_code == (401 if n <= LIMIT else 429), (n, r.text)
    with client_from("127.0.0.1", server.url) as proxy:
        # The victim, through the proxy: its own address was never counted.
        r = guess(proxy, app, app.secret or "", f"{spoofed()}, {VICTIM}")
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert guess(proxy, app, "wrong", VICTIM).status_code == 401
        # The proxy's own address (a direct call from 127.0.0.1) was not counted either.
        assert guess(proxy, app, "wrong", None).status_code == 401
