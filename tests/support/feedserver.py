"""A real HTTP server for ICS feeds on 127.0.0.1: the upstream of the ICS provider's tests.

Feeds are mutable bodies per path, served with a strong ETag and a Last-Modified that moves
forward on every change; conditional requests get 304 (If-None-Match first, as RFC 9110
s13.2.2 orders them); gzip when asked; optionally chunked (no Content-Length) and over TLS
with a throwaway certificate. Every request is logged so tests can assert what was sent.

    with FeedServer() as server:
        server.set_feed("/team.ics", body)
        url = server.url("/team.ics")
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

CALENDAR_TYPE = "text/calendar; charset=utf-8"


@dataclass
class Feed:
    body: bytes
    etag: str
    last_modified: datetime
    content_type: str = CALENDAR_TYPE
    gzip: bool | None = None  # None: the server's default
    chunked: bool = False


@dataclass(frozen=True)
class Canned:
    """A fixed answer for a path: an error status, a redirect, a non-calendar body."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hanging server)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for localhost and 127.0.0.1, and a client context trusting it."""

    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a throwaway certificate (cryptography is already a Calgate dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    files = TlsFiles(directory / "feed-cert.pem", directory / "feed-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hang up mid-body on purpose (size caps, timeouts); that is not a failure.
        return None


class FeedServer:
    """A threaded HTTP(S) server of mutable feeds; a context manager that always stops it."""

    def __init__(self, *, gzip_enabled: bool = True, tls: bool = False) -> None:
        self.gzip_enabled = gzip_enabled
        self.feeds: dict[str, Feed] = {}
        self.canned: dict[str, Canned] = {}
        self.requests: list[RequestRecord] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # cuts canned delays short on stop()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.tls: TlsFiles | None = None
        if tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="feedserver-")
            self.tls = make_tls_files(Path(self._tmp.name))
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert, self.tls.key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1", scheme: str | None = None) -> str:
        scheme = scheme or ("https" if self.tls else "http")
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what the tests change ----------------------------------------------------------

    def set_feed(self, path: str, body: str | bytes, *, content_type: str = CALENDAR_TYPE,
                 gzip: bool | None = None, chunked: bool = False) -> Feed:
        """Create or replace a feed; a new body gets a new ETag and a later Last-Modified."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.canned.pop(path, None)
            old = self.feeds.get(path)
            now = datetime.now(UTC).replace(microsecond=0)
            if old is not None and old.body == data:
                modified = old.last_modified
            elif old is not None:  # HTTP dates have one-second resolution: always move on
                modified = max(now, old.last_modified + timedelta(seconds=1))
            else:
                modified = now
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            feed = Feed(data, etag, modified, content_type, gzip, chunked)
            self.feeds[path] = feed
            return feed

    def respond(self, path: str, status: int, body: bytes | str = b"",
                headers: Mapping[str, str] | None = None, delay: float = 0.0) -> None:
        """Answer ``path`` with a fixed status, body and headers (after ``delay`` s)."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.feeds.pop(path, None)
            self.canned[path] = Canned(status, data, dict(headers or {}), delay)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.respond(path, status, headers={"Location": location})

    def remove(self, path: str) -> None:
        with self.lock:
            self.feeds.pop(path, None)
            self.canned.pop(path, None)

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def _not_modified(feed: Feed, if_none_match: str | None, if_modified_since: str | None) -> bool:
    if if_none_match is not None:  # takes precedence over If-Modified-Since
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return feed.etag in tags or "*" in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return feed.last_modified <= since
    return False


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            record = RequestRecord("GET", self.path,
                                   {k.lower(): v for k, v in self.headers.items()})
            with server.lock:
                server.requests.append(record)
                feed = server.feeds.get(self.path)
                canned = server.canned.get(self.path)
            if canned is not None:
                server.stopping.wait(canned.delay)
                self._send(canned.status, canned.headers, canned.body)
            elif feed is None:
                self._send(404, {"Content-Type": "text/plain"}, b"no such feed")
            else:
                self._send_feed(feed)

        def _send_feed(self, feed: Feed) -> None:
            headers = {"ETag": feed.etag, "Last-Modified": format_datetime(
                feed.last_modified, usegmt=True), "Cache-Control": "max-age=300"}
            if _not_modified(feed, self.headers.get("If-None-Match"),
                             self.headers.get("If-Modified-Since")):
                self._send(304, headers, b"")
                return
            body = feed.body
            wants_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
            if wants_gzip and (server.gzip_enabled if feed.gzip is None else feed.gzip):
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            headers["Content-Type"] = feed.content_type
            self._send(200, headers, body, chunked=feed.chunked)

        def _send(self, status: int, headers: Mapping[str, str], body: bytes,
                  chunked: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status == 304:
                self.end_headers()
                return
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(body), 16384):
                    part = body[start:start + 16384]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
