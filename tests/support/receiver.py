"""A client app's webhook receiver: a real HTTP server on loopback that checks every
notification's signatures the way an app would (pycronofy's ``hmac_valid`` for
``Cronofy-HMAC-SHA256``, its own check of ``Calgate-Signature``), de-duplicates by
notification id, and can be told to fail for a while."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pycronofy


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    answered: int
    cronofy_valid: bool
    calgate_valid: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def notification(self) -> dict[str, Any]:
        return self.json["notification"]


def calgate_signature_valid(header: str, body: bytes, secret: str,
                            tolerance: float = 300) -> bool:
    """The receiver's own check of ``Calgate-Signature: t=<unix>,v1=<hex>[,v1=…]``."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    if abs(time.time() - int(stamps[0])) > tolerance:
        return False
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(v, expected) for k, v in parts if k == "v1")


@dataclass
class Receiver:
    """Collects notifications; ``status`` decides the answer (a number or a callable)."""

    client_id: str
    secret: str
    status: Any = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # Cleared: requests are held open (in flight) until it is set again.
    gate: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    delay: float = 0.0  # seconds each answer takes

    def __post_init__(self) -> None:
        self.gate.set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self
        sdk = pycronofy.Client(client_id=self.client_id, client_secret=self.secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = receiver.status() if callable(receiver.status) else receiver.status
                headers = {k: v for k, v in self.headers.items()}
                cronofy = sdk.hmac_valid(headers.get("Cronofy-HMAC-SHA256", ""),
                                         body.decode())
                calgate = calgate_signature_valid(headers.get("Calgate-Signature", ""), body,
                                                  receiver.secret)
                with receiver.lock:
                    receiver.received.append(Received(time.time(), headers, body, status,
                                                      bool(cronofy), calgate))
                    receiver.in_flight += 1
                try:
                    receiver.gate.wait()
                    time.sleep(receiver.delay)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender is gone (killed): it never hears the answer
                    pass
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.gate.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def delivered(self) -> list[Received]:
        """Accepted (2xx) notifications, first delivery of each id only, in arrival order."""
        seen: set[str] = set()
        out = []
        with self.lock:
            for r in self.received:
                if 200 <= r.answered < 300 and r.notification.get("notification_id") not in seen:
                    seen.add(r.notification["notification_id"])
                    out.append(r)
        return out

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.delivered() if r.notification["type"] == kind]
