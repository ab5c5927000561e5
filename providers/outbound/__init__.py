"""The one outbound guard: every request to an address a user or a client app chose (CalDAV
and iCloud servers, ICS feeds, channel callbacks, Exchange) goes through it. Not a provider:
a shared package that providers and the gateway both import."""

from .policy import (
    BlockedAddress,
    OutboundPolicy,
    Resolver,
    UnresolvableHost,
    parse_networks,
    refused_rule,
    system_resolver,
)
from .redirects import MAX_REDIRECTS, RedirectRefused, next_hop

__all__ = ["MAX_REDIRECTS", "BlockedAddress", "OutboundPolicy", "RedirectRefused", "Resolver",
           "UnresolvableHost", "next_hop", "parse_networks", "refused_rule",
           "system_resolver"]
