"""The outbound guard's requests adapter (exchangelib's stack) against a real HTTPS server on
loopback whose certificate names ``ews.example`` only: the connection goes to the checked
address, TLS and Host stay on the name, the operator's CA bundle is what is trusted, proxies
are ignored, and a redirect towards a refused address is refused before anyone follows it."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
import requests
import trustme

from providers.outbound import BlockedAddress, OutboundPolicy, RedirectRefused
from providers.outbound.requests_adapter import (
    Guard,
    GuardedAdapter,
    NoOutboundPolicy,
    guarded,
)
from tests.support import aio


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers["Host"])
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/to/"):])
            body = b""
        else:
            self.send_response(200)
            body = self.headers["Host"].encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("ews.example").configure_cert(context)
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"port": httpd.server_address[1], "bundle": str(bundle), "seen": seen}
    httpd.shutdown()
    httpd.server_close()


def _policy(*answers: str) -> OutboundPolicy:
    return OutboundPolicy.allowing(["127.0.0.0/8"], resolver=lambda host, port: list(answers))


_OPEN: list[requests.Session] = []


def _session(guard: Guard | None = None) -> requests.Session:
    session = requests.Session()
    session.mount("https://", GuardedAdapter(guard))
    session.mount("http://", GuardedAdapter(guard))
    _OPEN.append(session)
    return session


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def test_the_name_is_pinned_to_its_checked_address_with_tls_and_host_on_the_name(
        server: dict[str, Any]) -> None:
    guard = Guard(_policy("127.0.0.1"), server["bundle"])
    answer = _session(guard).get(f"https://ews.example:{server['port']}/", timeout=5)
    assert (answer.status_code, answer.text) == (200, f"ews.example:{server['port']}")


def test_a_certificate_for_another_name_is_refused(server: dict[str, Any]) -> None:
    guard = Guard(_policy("127.0.0.1"), server["bundle"])
    with pytest.raises(requests.exceptions.SSLError):
        _session(guard).get(f"https://other.example:{server['port']}/", timeout=5)


def test_without_the_operator_bundle_the_private_ca_is_not_trusted(
        server: dict[str, Any]) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        _session(Guard(_policy("127.0.0.1"))).get(
            f"https://ews.example:{server['port']}/", timeout=5)


def test_a_refused_answer_is_refused_before_any_connection(server: dict[str, Any]) -> None:
    before = len(server["seen"])
    guard = Guard(OutboundPolicy(resolver=lambda host, port: ["127.0.0.1"]), server["bundle"])
    with pytest.raises(BlockedAddress, match="loopback"):
        _session(guard).get(f"https://ews.example:{server['port']}/", timeout=5)
    assert len(server["seen"]) == before


def test_without_a_policy_in_force_nothing_is_sent(server: dict[str, Any]) -> None:
    before = len(server["seen"])
    with pytest.raises(NoOutboundPolicy):
        _session().get(f"https://ews.example:{server['port']}/", timeout=5)
    assert len(server["seen"]) == before


def test_the_context_policy_reaches_a_worker_thread(server: dict[str, Any]) -> None:
    session = _session()

    async def main() -> str:
        with guarded(_policy("127.0.0.1"), ca_bundle=server["bundle"]):
            answer = await anyio.to_thread.run_sync(
                lambda: session.get(f"https://ews.example:{server['port']}/", timeout=5))
        return answer.text

    assert aio.in_thread(anyio.run, main) == f"ews.example:{server['port']}"


def test_the_next_checked_address_is_tried_when_one_does_not_connect(
        server: dict[str, Any]) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.2", server["port"]))  # bound, never listening: refused
    try:
        guard = Guard(_policy("127.0.0.2", "127.0.0.1"), server["bundle"])
        answer = _session(guard).get(f"https://ews.example:{server['port']}/", timeout=5)
    finally:
        closed.close()
    assert answer.status_code == 200


def test_an_environment_proxy_is_not_used(server: dict[str, Any]) -> None:
    guard = Guard(_policy("127.0.0.1"), server["bundle"])
    answer = _session(guard).get(f"https://ews.example:{server['port']}/", timeout=5,
                                 proxies={"https": "http://10.9.9.9:3128"})
    assert answer.status_code == 200


def test_a_redirect_towards_a_refused_address_is_refused(server: dict[str, Any]) -> None:
    guard = Guard(OutboundPolicy.allowing(
        ["127.0.0.1/32"], resolver=lambda host, port: {"ews.example": ["127.0.0.1"],
                                                        "meta.example": ["169.254.169.254"]
                                                        }[host]), server["bundle"])
    base = f"https://ews.example:{server['port']}"
    with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254"):
        _session(guard).get(f"{base}/to/https://meta.example/x", allow_redirects=False,
                            timeout=5)
    with pytest.raises(RedirectRefused, match="plain http"):
        _session(guard).get(f"{base}/to/http://ews.example/x", timeout=5)
    followed = _session(guard).get(f"{base}/to/{base}/fine", timeout=5)
    assert followed.status_code == 200

