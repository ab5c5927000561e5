"""The one table from feed-fetching failures to the provider error tree."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from ..errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from .client import FeedEncodingError, FeedStatusError, FeedTooLarge

READ_ONLY = "ICS feeds are read-only"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 s10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def from_status(status: int, retry_after: str | None) -> ProviderError:
    """The provider error for a feed server's HTTP status."""
    message = f"the feed server answered HTTP {status}"
    if status == 401:
        return Unauthorized(f"{message}: the feed URL or its credentials are not accepted")
    if status == 403:
        return Forbidden(f"{message}: access to this feed is denied")
    if status in (404, 410):
        return NotFound(f"{message}: no feed at this URL (any more)")
    seconds = retry_after_seconds(retry_after)
    if status == 429 or (status == 503 and seconds is not None):
        return RateLimited(f"{message}: slow down", retry_after=seconds)
    if status >= 500:
        return Unavailable(message)
    return InvalidInput(message)


def translate(exc: Exception) -> ProviderError:
    """The provider error for an exception raised while fetching a feed."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, FeedStatusError):
        return from_status(exc.status_code, exc.retry_after)
    if isinstance(exc, FeedTooLarge | FeedEncodingError):
        return InvalidInput(str(exc))
    if isinstance(exc, httpx.TooManyRedirects):
        return InvalidInput("the feed URL redirects too many times")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return InvalidInput(f"the feed URL (or a redirect) is not usable: {exc}")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return Unavailable("the feed server did not answer in time")
    if isinstance(exc, socket.gaierror):
        return Unavailable(f"the feed's host name could not be resolved: {exc}")
    if isinstance(exc, httpx.ConnectError):  # refused, unreachable, TLS handshake or certificate
        return Unavailable(f"could not connect to the feed server: {exc}")
    if isinstance(exc, httpx.HTTPError | OSError):
        return Unavailable(f"the feed could not be fetched: {exc}")
    raise TypeError(f"no provider error for {type(exc).__name__}") from exc


@contextmanager
def feed_errors() -> Iterator[None]:
    """Re-raise anything the fetch raises as a provider error, once, at this boundary."""
    try:
        yield
    except ProviderError:
        raise
    except (FeedStatusError, FeedTooLarge, FeedEncodingError,
            httpx.HTTPError, OSError, TimeoutError) as exc:
        raise translate(exc) from exc
