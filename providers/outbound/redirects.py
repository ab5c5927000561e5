"""The one rule for following a redirect, shared by every outbound transport.

Each hop is a new request through the guard (its address checked before a byte is sent).
What the hop may carry follows RFC 9110 s15.4: 303 becomes a GET (HEAD stays HEAD); 301
and 302 turn a POST into a GET, as every user agent does; otherwise the method, and its
body, are kept. A method with side effects, or a body, is never replayed to another origin: such a
hop is refused instead (a PROPFIND or a PUT redirected to another host is not followed).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import InvalidInput

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SCHEMES = frozenset({"http", "https"})
_SAFE = frozenset({"GET", "HEAD"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RedirectRefused(InvalidInput):
    """A redirect Calgate will not follow (another origin, another scheme, too many)."""


@dataclass(frozen=True, slots=True)
class Hop:
    """The request to send next: its method, URL, and whether the body goes along."""

    method: str
    url: str
    keep_body: bool
    same_origin: bool


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise RedirectRefused(f"not a usable URL: {url}") from None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def check_scheme(url: str) -> None:
    """Only http and https leave Calgate (no file:, ftp:, gopher:, …)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise RedirectRefused(f"only http and https URLs with a host are followed: {url}")


def next_hop(method: str, url: str, status: int, location: str | None) -> Hop:
    """Where a ``status`` answer to ``method url`` leads; raises RedirectRefused for a
    redirect that must not be followed."""
    if not location:
        raise RedirectRefused(f"HTTP {status} without a Location")
    target = urljoin(url, location.strip())
    check_scheme(target)
    before, after = origin(url), origin(target)
    if before[0] == "https" and after[0] == "http":
        raise RedirectRefused(f"refusing a redirect from https to plain http ({target})")
    method = method.upper()
    new_method = method
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        new_method = "GET"
    same = before == after
    if not same and new_method not in _SAFE:
        raise RedirectRefused(
            f"refusing to replay {method} to another origin ({target}) after HTTP {status}")
    return Hop(new_method, target, new_method == method and method not in _SAFE, same)
