"""The guard for the niquests stack (caldav==3.6 sends every request through a niquests
``Session``): a resolver that answers only with checked addresses, so urllib3-future
connects to exactly those (TLS SNI and certificate checks stay on the name), and a
session that applies :func:`~.redirects.next_hop` to every redirect before it is sent."""

from __future__ import annotations

import socket
from typing import Any

import niquests

# niquests runs on urllib3-future, which installs itself as ``urllib3`` (the same classes
# niquests' adapter checks the resolver against).
from urllib3.contrib.resolver import BaseResolver, ProtocolResolver

from .policy import OutboundPolicy
from .redirects import MAX_REDIRECTS, REDIRECTS, RedirectRefused, next_hop

_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str | bytes,
                 tuple[str, int] | tuple[str, int, int, int]]


class GuardedResolver(BaseResolver):
    """getaddrinfo through :meth:`OutboundPolicy.addresses`: one resolution, every answer
    checked, and the connection made to what was checked (no second lookup)."""

    protocol = ProtocolResolver.CUSTOM
    implementation = "calgate-outbound-guard"

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(None, None)
        self.policy = policy

    def recycle(self) -> BaseResolver:
        return self

    def close(self) -> None:
        pass  # holds nothing

    def is_available(self) -> bool:
        return True

    def getaddrinfo(self, host: bytes | str | None, port: str | int | None,
                    family: socket.AddressFamily, type: socket.SocketKind,
                    proto: int = 0, flags: int = 0, *,
                    quic_upgrade_via_dns_rr: bool = False) -> list[AddrInfo]:
        name = host.decode("ascii") if isinstance(host, bytes) else str(host or "")
        number = int(port or 0)
        found: list[AddrInfo] = []
        for address in self.policy.addresses(name, number):
            # Numeric only from here on: AI_NUMERICHOST makes a name an error, not a lookup.
            for info in socket.getaddrinfo(address, number, family, type, proto,
                                           socket.AI_NUMERICHOST):
                found.append((info[0], info[1], info[2], "", info[4]))  # type: ignore[arg-type]
        return found


class GuardedSession(niquests.Session):
    """A niquests Session that connects only through :class:`GuardedResolver` and follows
    redirects itself by :func:`next_hop` (niquests' own rules replay a PROPFIND to another
    host). No environment proxies or .netrc (a proxy would bypass the guard), no HTTP/3
    (Alt-Svc may name another endpoint), no OCSP fetches (requests to addresses nobody
    chose, which the guard would not see)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(resolver=GuardedResolver(policy), disable_http3=True,
                         revocation_configuration=None)
        self.trust_env = False

    def request(self, method: str, url: str,  # type: ignore[override]
                **kwargs: Any) -> niquests.Response:
        kwargs["allow_redirects"] = False
        response = super().request(method, url, **kwargs)
        for _ in range(MAX_REDIRECTS):
            if response.status_code not in REDIRECTS:
                return response
            hop = next_hop(method, str(response.url or url), response.status_code or 0,
                           response.headers.get("Location"))
            response.close()
            method, url = hop.method, hop.url
            headers = dict(kwargs.get("headers") or {})
            if not hop.keep_body:
                kwargs.pop("data", None)
                kwargs.pop("json", None)
                headers = _without(headers, _BODY_HEADERS)
            if not hop.same_origin:
                kwargs.pop("auth", None)  # credentials go to the origin they were for
                headers = _without(headers, _CREDENTIAL_HEADERS)
            kwargs["headers"] = headers
            response = super().request(method, url, **kwargs)
        if response.status_code in REDIRECTS:
            response.close()
            raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects")
        return response


def _without(headers: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    drop = {name.lower() for name in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}
