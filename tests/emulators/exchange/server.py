"""The HTTPS plumbing: a threaded stdlib server on 127.0.0.1 with a certificate from a
``trustme`` CA for the names the tests use. NTLM authenticates a TCP connection, not a
request, so every request carries its connection's number. An answer of :data:`DROP`
closes the connection without a response: the request was applied, its answer is lost."""

from __future__ import annotations

import itertools
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

_CONNECTIONS = itertools.count(1)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: int


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


DROP = Response(0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    app: Callable[[Request], Response]

    def setup(self) -> None:
        super().setup()
        self.connection_number = next(_CONNECTIONS)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path.split("?", 1)[0],
                          {k.lower(): v for k, v in self.headers.items()}, body,
                          self.connection_number)
        response = self.app(request)
        if response is DROP:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = _handle


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext

    def server_activate(self) -> None:
        super().server_activate()
        self.connections: set[socket.socket] = set()  # open ones, closed on stop

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        connection = self.tls.wrap_socket(raw, server_side=True,
                                          do_handshake_on_connect=False)
        self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """A client that keeps a connection open (a pooled one) leaves its handler
        waiting; stopping the server ends those connections too."""
        for connection in list(self.connections):
            self.connections.discard(connection)
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (a dropped answer, a refused certificate) is not news


class TestCA:
    """A throwaway CA; the server's certificate names 127.0.0.1, localhost and ``names``.
    ``pem_path`` is the CA certificate to trust (the operator's CA bundle)."""

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        self.ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="ewsemu-ca-")
        self.pem_path = str(Path(self._dir.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.pem_path)
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost", *names).configure_cert(
            self.server_context)

    def cleanup(self) -> None:
        self._dir.cleanup()


class Server:
    """A running HTTPS server for ``app``."""

    def __init__(self, app: Callable[[Request], Response], ca: TestCA,
                 bind: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        handler = type("Handler", (_Handler,), {"app": staticmethod(app)})
        self.httpd = _TLSServer(bind, handler)
        self.httpd.tls = ca.server_context
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        name="exchange-emulator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.close_connections()
