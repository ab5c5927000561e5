"""CalDAV failures onto the provider error tree, once, at the adapter's boundary.

Two sources: exceptions (caldav raises ``AuthorizationError`` for 401/403 and
``RateLimitError`` for 429 and 503-with-Retry-After; niquests raises for connections and
TLS; httpx is mapped too, for callers that reach a server through it) and the HTTP status
of every other answer, which :class:`~providers.caldav.client.CalDavClient` checks itself.
Nothing from caldav, niquests or httpx leaves :func:`translated`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import niquests
from caldav.lib import error as caldav_error

from ..errors import (
    CertificateInvalid,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unreachable,
)

# Apple refuses the Apple ID password itself with a bare 401 (PEERS.md s2 row 11).
ICLOUD_HINT = (
    "iCloud refused the password. iCloud calendars need an app-specific password, not the "
    "Apple ID password: create one at https://appleid.apple.com under Sign-In and Security "
    "> App-Specific Passwords, and link the account again with it. Resetting the Apple ID "
    "password revokes every app-specific password."
)

_BY_STATUS: dict[int, type[ProviderError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    410: NotFound, 412: Conflict, 415: InvalidInput, 422: InvalidInput,
}


class PreconditionFailed(Conflict):
    """412 on a conditional write: ``If-None-Match: *`` found the resource already there, or
    ``If-Match`` found a newer version. The adapter tells the two apart by what it sent."""


def is_icloud(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "icloud.com" or host.endswith(".icloud.com")


def from_status(status: int, *, host: str, what: str,
                retry_after: float | None = None) -> ProviderError:
    """The provider error for an HTTP ``status`` answered by ``host`` to ``what``."""
    message = f"{what}: {host} answered HTTP {status}"
    if status == 401 and is_icloud(host):
        return Unauthorized(ICLOUD_HINT)
    if status == 429 or (status == 503 and retry_after is not None):
        return RateLimited(message, retry_after)
    if status == 412:
        return PreconditionFailed(message)
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return kind(message)
    if status >= 500 or status == 408:
        return Unavailable(message)
    return InvalidInput(message)


def translate(exc: BaseException, *, host: str, what: str) -> ProviderError:
    """The provider error for an exception raised while talking to ``host``."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, caldav_error.RateLimitError):
        return RateLimited(f"{what}: {host} asks to slow down", exc.retry_after_seconds)
    if isinstance(exc, caldav_error.DAVError):
        if exc.status is not None:
            return from_status(exc.status, host=host, what=what)
        return Unavailable(f"{what}: unexpected answer from {host}: {exc.reason}")
    if isinstance(exc, httpx.HTTPStatusError):
        return from_status(exc.response.status_code, host=host, what=what)
    return _transport_error(exc, host=host, what=what)


def _transport_error(exc: BaseException, *, host: str, what: str) -> ProviderError:
    if _is_certificate_failure(exc):
        return CertificateInvalid(
            f"{what}: TLS certificate verification failed for {host} ({exc}). If the server "
            "uses a private or self-signed CA, link it again with that CA's certificate as "
            "ca_bundle; verification is never switched off.")
    if isinstance(exc, niquests.exceptions.SSLError | ssl.SSLError):
        return Unavailable(f"{what}: TLS with {host} failed: {exc}")
    if isinstance(exc, niquests.exceptions.InvalidURL | niquests.exceptions.MissingSchema
                  | niquests.exceptions.InvalidSchema | httpx.InvalidURL):
        return InvalidInput(f"{what}: not a usable server address: {exc}")
    if isinstance(exc, NotImplementedError):  # caldav: no auth scheme it supports offered
        return Unauthorized(f"{what}: {host} offers no supported authentication scheme")
    if isinstance(exc, niquests.exceptions.RequestException | httpx.TransportError | OSError):
        return Unreachable(f"{what}: could not reach {host}: {exc}")
    if isinstance(exc, SyntaxError):  # lxml.etree.XMLSyntaxError: a body that is not XML
        return Unavailable(f"{what}: {host} sent a malformed response")
    return Unavailable(f"{what}: unexpected failure talking to {host}: {type(exc).__name__}")


def _is_certificate_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        text = str(seen).lower()
        if "certificate_verify_failed" in text or "certificate verify failed" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def translated(host: str, what: str) -> Iterator[None]:
    """Run a block of wire calls; any failure leaves as a :class:`ProviderError`."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        raise translate(exc, host=host, what=what) from exc
