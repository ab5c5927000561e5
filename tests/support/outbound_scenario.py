"""Run inside a fresh network namespace (``unshare -n``) by
tests/integration/test_outbound_namespace.py: puts 169.254.169.254, 10.0.0.1 and a public
stand-in 44.0.0.1 on ``lo``, listens on every forbidden address (counting connections),
serves redirects from 44.0.0.1, and drives Calgate's real CalDAV link path, ICS feed
verification and callback delivery at them. Prints one JSON object: what each attempt
raised, and how many connections each forbidden listener accepted (all must be 0)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.services.channels import ChannelError, ChannelSettings, check_callback_url
from gateway.services.connectors import register_defaults
from gateway.services.linking import ConnectorRegistry
from gateway.sync.delivery import Deliverer, DeliverySettings
from providers.outbound import OutboundPolicy
from providers.registry import ProviderOptions

PUBLIC = "44.0.0.1"  # globally routable, so the guard lets it through
FORBIDDEN = {"169.254.169.254": (80, 443), "10.0.0.1": (80, 443, 8443),
             "127.0.0.1": (80, 443)}
STATUSES = (301, 302, 303, 307, 308)


class Counter:
    """Accepts and counts connections on one address and port; never answers."""

    def __init__(self, host: str, port: int) -> None:
        self.count = 0
        self.sock = socket.create_server((host, port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            self.count += 1
            conn.close()


class Redirector(BaseHTTPRequestHandler):
    """``/r/<status>/<host>`` answers that redirect to ``http://<host>/x``; else 404."""

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        parts = self.path.split("/")
        if len(parts) >= 4 and parts[1] == "r":
            self.send_response(int(parts[2]))
            self.send_header("Location", f"http://{parts[3]}/x")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PROPFIND = do_REPORT = do_OPTIONS = _any

    def log_message(self, *args: Any) -> None:
        pass


class Dns:
    """The test resolver: fixed names, and one whose answer changes after the first query
    (a rebinding attacker's). Records every query."""

    def __init__(self) -> None:
        self.names = {"cal.example": [PUBLIC], "meta.example": ["169.254.169.254"],
                      "localhost": ["127.0.0.1", "::1"],
                      "loop.example": ["127.0.0.1"], "ten.example": ["10.0.0.1"],
                      "mixed.example": [PUBLIC, "10.0.0.1"]}
        self.queries: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        if host == "rebind.example":
            return [PUBLIC] if self.queries.count(host) == 1 else ["169.254.169.254"]
        return list(self.names.get(host, []))


def network() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in ("169.254.169.254", "10.0.0.1", PUBLIC):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)


def outcome(call: Any) -> dict[str, str]:
    try:
        result = call()
    except ChannelError as exc:
        return {"raised": "ChannelError", "code": exc.code, "message": str(exc)}
    except Exception as exc:
        cause = exc.__cause__ or exc
        return {"raised": type(exc).__name__, "cause": type(cause).__name__,
                "message": str(exc)}
    return {"raised": "", "result": repr(result)}


def caldav_cases() -> dict[str, str]:
    cases = {f"bare {u}": u for u in ("10.0.0.1", "169.254.169.254", "localhost",
                                      "alice@10.0.0.1", "10.0.0.1:8443")}
    cases |= {f"name {h}": f"https://{h}/dav/" for h in
              ("meta.example", "loop.example", "ten.example", "mixed.example")}
    for status in STATUSES:
        for target in ("169.254.169.254", "127.0.0.1", "10.0.0.1", "meta.example"):
            cases[f"redirect {status} {target}"] = f"http://cal.example/r/{status}/{target}"
    cases["rebinding"] = "http://rebind.example/dav/"
    return cases


def requests_cases(policy: OutboundPolicy) -> dict[str, Any]:
    """The requests adapter (exchangelib's stack): forbidden literals, names resolving to
    forbidden addresses, and redirects towards them, for the POST every EWS call is and
    the GET Autodiscover's redirect method sends."""
    import requests

    from providers.outbound.requests_adapter import Guard, GuardedAdapter

    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, GuardedAdapter(Guard(policy)))
    calls = {f"literal {h}": ("POST", f"http://{h}/EWS/Exchange.asmx")
             for h in ("169.254.169.254", "10.0.0.1", "127.0.0.1")}
    calls |= {f"name {h}": ("POST", f"https://{h}/EWS/Exchange.asmx")
              for h in ("meta.example", "loop.example", "ten.example", "mixed.example")}
    for method in ("GET", "POST"):
        for status in STATUSES:
            for target in ("169.254.169.254", "10.0.0.1", "meta.example"):
                calls[f"redirect {method} {status} {target}"] = (
                    method, f"http://cal.example/r/{status}/{target}")
    return {f"requests {name}": outcome(lambda c=call: session.request(
                c[0], c[1], data=b"<x/>", timeout=5, allow_redirects=True))
            for name, call in calls.items()}


def main() -> None:
    network()
    counters = {f"{h}:{p}": Counter(h, p) for h, ports in FORBIDDEN.items() for p in ports}
    server = ThreadingHTTPServer((PUBLIC, 80), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dns = Dns()
    policy = OutboundPolicy(resolver=dns)
    connectors = ConnectorRegistry()
    register_defaults(connectors, ProviderOptions(timeout=5, outbound=policy))
    caldav, ics = connectors.get("caldav"), connectors.get("ics")
    assert caldav is not None and ics is not None
    results: dict[str, Any] = {}
    for name, url in caldav_cases().items():
        values = {"server_url": url, "username": "alice", "password": "secret"}
        results[f"caldav {name}"] = outcome(lambda v=values: caldav.verify(v))
    for status in STATUSES:
        url = f"http://cal.example/r/{status}/169.254.169.254"
        results[f"ics redirect {status}"] = outcome(lambda u=url: ics.verify({"url": u}))
    deliverer = Deliverer(None, lambda client, body: {},  # type: ignore[arg-type]
                          DeliverySettings(timeout=5, outbound=policy))
    for status in STATUSES:
        url = f"http://cal.example/r/{status}/169.254.169.254"
        delivered = asyncio.run(deliverer._post(1, url, {}, b"{}"))
        results[f"callback redirect {status}"] = {"ok": delivered.ok,
                                                  "status": delivered.status_code}
    delivered = asyncio.run(deliverer._post(1, "http://meta.example/hook", {}, b"{}"))
    results["callback name meta.example"] = {"ok": delivered.ok, "error": delivered.error}
    settings = ChannelSettings(http_hosts=("meta.example",), outbound=policy)
    results["channel create meta.example"] = outcome(
        lambda: check_callback_url("http://meta.example/hook", settings))
    results |= requests_cases(policy)
    print(json.dumps({"results": results, "queries": dns.queries,
                      "connections": {k: c.count for k, c in counters.items()}}))


if __name__ == "__main__":
    main()
