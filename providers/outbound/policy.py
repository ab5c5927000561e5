"""Which addresses a user-chosen URL may reach: the deny list, the operator's allowed
networks, and resolving a name once into the addresses a connection may then use.

A server URL, a feed URL or a callback URL is user input, so Calgate must not become a way
to reach the deployment's own network (cloud metadata at 169.254.169.254, the database,
Vault, …). The transports in this package connect only to addresses :meth:`OutboundPolicy.
addresses` returned; handing the name back to a connection pool would let a second DNS
answer (DNS rebinding) pick a different, unchecked address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import InvalidInput, Unavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> its addresses; blocking (the async transport runs it in a worker thread).
Resolver = Callable[[str, int], list[str]]

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598: a carrier's (or a cloud's) NAT
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # Linux connects 0.x to the host itself
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is embedded
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a site's own NAT64

# Checked in this order, so the message names the most specific rule (127.0.0.1 is also
# "private" to the ipaddress module, but "loopback" is what the operator needs to read).
_RULES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("loopback", lambda a: a.is_loopback),
    ("unspecified", lambda a: a.is_unspecified),
    ("this-network (0.0.0.0/8)", lambda a: a in _THIS_NETWORK),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("carrier-grade NAT (100.64.0.0/10)", lambda a: a in _CGNAT),
    ("local NAT64 (64:ff9b:1::/48)", lambda a: a in _NAT64_LOCAL),
    ("private", lambda a: a.is_private),
    ("reserved", lambda a: a.is_reserved),
    ("not globally routable", lambda a: not a.is_global),
)


class BlockedAddress(InvalidInput):
    """A URL (or a redirect) leads to an address the outbound policy refuses. A subclass
    of its own so a page can say "that address is not reachable from this server"."""

    def __init__(self, host: str, address: str, rule: str) -> None:
        super().__init__(f"refusing to connect to {host}: {address} is a {rule} address "
                         "(an operator may allow its network with "
                         "CALGATE_OUTBOUND_ALLOW_NETWORKS)")
        self.host, self.address, self.rule = host, address, rule


class UnresolvableHost(Unavailable):
    """The name has no address (or DNS failed): maybe temporary, so Unavailable."""


def parse_address(address: str) -> IPAddress:
    """``address`` as an IP address, without an IPv6 zone (``fe80::1%eth0``)."""
    return ipaddress.ip_address(address.split("%", 1)[0])


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped (``::ffff:a.b.c.d``),
    NAT64 (``64:ff9b::a.b.c.d``) or 6to4 (``2002:AABB:CCDD::``); None otherwise."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refused_rule(address: str) -> str | None:
    """The deny-list rule that refuses ``address``, or None for a public address. An IPv6
    address carrying an IPv4 one is judged by that too (::ffff:127.0.0.1 is loopback)."""
    ip = parse_address(address)
    # A NAT64 address (64:ff9b::/96, "reserved" to the ipaddress module) is how an
    # IPv6-only network reaches IPv4: judged by the IPv4 address it carries alone.
    candidates = (embedded_ipv4(ip),) if ip in _NAT64 else (embedded_ipv4(ip), ip)
    for candidate in candidates:
        if candidate is None:
            continue
        rule = next((rule for rule, applies in _RULES if applies(candidate)), None)
        if rule is not None:
            return rule
    return None


def is_ip_literal(host: str) -> bool:
    try:
        parse_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses in getaddrinfo order, each once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"{host} could not be resolved: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs as networks; raises ValueError naming the first that is not one."""
    networks: list[IPNetwork] = []
    for cidr in (c.strip() for c in cidrs):
        if cidr:
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network in CIDR notation") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """The deny list, minus the networks the operator allows, plus how names resolve
    (tests inject a resolver; production uses the system's)."""

    allow_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def allowing(cls, cidrs: Iterable[str], resolver: Resolver = system_resolver,
                 ) -> OutboundPolicy:
        return cls(parse_networks(cidrs), resolver)

    def refused(self, address: str) -> str | None:
        """The rule refusing ``address``, or None when it is public or allowed."""
        ip = parse_address(address)
        inner = embedded_ipv4(ip)
        if any(candidate in network for network in self.allow_networks
               for candidate in (ip, inner) if candidate is not None
               and candidate.version == network.version):
            return None
        return refused_rule(address)

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host``, in order. Refuses the name
        when *any* answer is refused: a name mixing public and private answers is exactly
        what a rebinding attacker would publish."""
        host = host.strip("[]")
        addresses = [host] if is_ip_literal(host) else self.resolver(host, port)
        if not addresses:
            raise UnresolvableHost(f"{host} has no address")
        for address in addresses:
            rule = self.refused(address)
            if rule is not None:
                raise BlockedAddress(host, address, rule)
        return addresses
