"""The SSRF guard: a feed URL is user input, so Calgate must not become a way to reach the
deployment's own network (cloud metadata at 169.254.169.254, the database, Vault, …).

Every connection, redirect hops included, goes through :class:`PinnedTransport`: it resolves
the host once, refuses loopback, private, link-local, multicast, unspecified and reserved
addresses (unless the operator allows private networks), and then connects to the very
address it checked. Handing the hostname back to the connection pool instead would let a
second DNS answer (DNS rebinding) pick a different, unchecked address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable

import anyio
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
AddressPolicy = Callable[[str], str | None]  # address -> the rule refusing it, or None

# Checked in this order, so the message names the most specific rule (127.0.0.1 is also
# "private" to the ipaddress module, but "loopback" is what the operator needs to read).
_RULES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("loopback", lambda a: a.is_loopback),
    ("unspecified", lambda a: a.is_unspecified),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("private", lambda a: a.is_private),
    ("reserved", lambda a: a.is_reserved),
    ("not globally routable", lambda a: not a.is_global),
)


class BlockedAddress(Exception):
    """A feed URL (or a redirect) leads to an address the SSRF policy refuses."""

    def __init__(self, host: str, address: str, rule: str) -> None:
        super().__init__(f"refusing to fetch {host}: {address} is a {rule} address "
                         "(an operator may allow private networks)")
        self.host, self.address, self.rule = host, address, rule


def refused_rule(address: str) -> str | None:
    """The rule that refuses ``address``, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return next((rule for rule, applies in _RULES if applies(ip)), None)


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses in getaddrinfo order (in a worker thread, as anyio does)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        if str(sockaddr[0]) not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves, checks and pins each request's address before ``inner`` connects."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, allow_private_networks: bool,
                 resolver: Resolver = system_resolver,
                 policy: AddressPolicy = refused_rule) -> None:
        self.inner = inner
        self.allow_private_networks = allow_private_networks
        self.resolver = resolver
        self.policy = policy

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to try for ``host``, in order."""
        addresses = [host] if _is_ip_literal(host) else await self.resolver(host, port)
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address")
        if not self.allow_private_networks:
            # Refuse when *any* answer is private: a name that mixes public and private
            # answers is exactly what a rebinding attacker would publish.
            for address in addresses:
                rule = self.policy(address)
                if rule is not None:
                    raise BlockedAddress(host, address, rule)
        return addresses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii")
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        last_error: httpx.ConnectError | None = None
        for address in await self.addresses(host, port):
            try:
                return await self.inner.handle_async_request(self._pin(request, host, address))
            except httpx.ConnectError as exc:  # try the next address, as a browser would
                last_error = exc
        assert last_error is not None
        raise last_error

    @staticmethod
    def _pin(request: httpx.Request, host: str, address: str) -> httpx.Request:
        # The Host header stays the name (httpx set it from the original URL); TLS keeps
        # verifying the certificate against the name through the sni_hostname extension.
        extensions = dict(request.extensions)
        if not _is_ip_literal(host):
            extensions["sni_hostname"] = host
        return httpx.Request(request.method, request.url.copy_with(host=address),
                             headers=request.headers, stream=request.stream,
                             extensions=extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()
