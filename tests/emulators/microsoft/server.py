"""The HTTPS plumbing: a threaded stdlib server on 127.0.0.1 with a certificate from a
``trustme`` CA (msal refuses an http:// authority). The TLS handshake runs in the handler
thread, so a stalled client never blocks ``accept``. An answer of :data:`DROP` closes the
connection without a response: the request was applied but its answer is lost."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # last value wins, as Graph reads them
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        pairs = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in pairs.items()}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


DROP = Response(0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no delayed-ACK wait
    app: Callable[[Request], Response]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        request = Request(self.command, parts.path, query,
                          {k.lower(): v for k, v in self.headers.items()}, body)
        response = self.app(request)
        if response is DROP:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        # the handshake happens on the handler thread's first read
        return self.tls.wrap_socket(raw, server_side=True,
                                    do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request (e.g. a dropped answer) is not news


class TestCA:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost; ``pem_path``
    is the CA certificate to trust (pass it as ``verify=``, never via REQUESTS_CA_BUNDLE)."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="msemu-ca-")
        self.pem_path = str(Path(self._dir.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.pem_path)
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.server_context)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.pem_path)

    def cleanup(self) -> None:
        self._dir.cleanup()


class Server:
    """A running HTTPS server for ``app`` (start/stop from any thread)."""

    def __init__(self, app: Callable[[Request], Response], ca: TestCA, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"app": staticmethod(app)})
        self.httpd = _TLSServer(("127.0.0.1", port), handler)
        self.httpd.tls = ca.server_context
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        name="microsoft-emulator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
