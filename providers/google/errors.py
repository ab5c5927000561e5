"""Google failures onto the provider error tree, once, at the adapter's boundary.

Sources: ``googleapiclient.errors.HttpError`` (status plus Google's ``errors[].reason``),
``google.auth.exceptions.RefreshError`` / ``TransportError`` from the token refresh, and
httplib2 / socket errors from the transport. The throttling and transient kinds are
subclasses the retry loop recognises (:class:`Throttled`, :class:`Transient`); callers only
ever see the public classes of :mod:`providers.errors`. Nothing from googleapiclient,
google-auth or httplib2 leaves :func:`translated`.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import google.auth.exceptions
import httplib2  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from ..errors import (
    Conflict,
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
)

# https://developers.google.com/workspace/calendar/api/guides/errors
RETRIED_QUOTA = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
DAILY_QUOTA = frozenset({"quotaExceeded", "dailyLimitExceeded"})


class Throttled(RateLimited):
    """403 rateLimitExceeded / userRateLimitExceeded or 429: retried with backoff."""


class Transient(Unavailable):
    """5xx, a timeout or a dropped connection: retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Duplicate(Conflict):
    """409 on insert: an event with the requested id exists (maybe cancelled)."""


class Gone(NotFound):
    """410 deleted: the event was deleted (its tombstone remains)."""


class PreconditionFailed(Conflict):
    """412: the If-Match etag is stale."""


def _reason(exc: HttpError) -> tuple[str, str]:
    """Google's first ``errors[].reason`` and the error message."""
    try:
        error = json.loads(exc.content.decode("utf-8", "replace"))["error"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return str(error), ""
    items = error.get("errors") or []
    reason = items[0].get("reason", "") if items and isinstance(items[0], dict) else ""
    return str(reason), str(error.get("message", ""))


def retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides instead


def from_http_error(exc: HttpError, what: str) -> ProviderError:
    status = int(exc.resp.status)
    reason, message = _reason(exc)
    text = f"{what}: Google answered {status}" + (f" {reason}" if reason else "") + (
        f": {message}" if message else "")
    wait = retry_after(exc.resp)
    if status == 429 or (status == 403 and reason in RETRIED_QUOTA):
        return Throttled(text, wait)
    if status == 403 and reason in DAILY_QUOTA:
        return RateLimited(text, wait)
    if status >= 500 or status == 408:
        return Transient(text, wait)
    if status == 410:
        return CursorExpired(text) if reason == "fullSyncRequired" else Gone(text)
    kinds: dict[int, type[ProviderError]] = {
        400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound,
        409: Duplicate if reason == "duplicate" else Conflict, 412: PreconditionFailed}
    return kinds.get(status, InvalidInput)(text)


def translate(exc: BaseException, what: str) -> ProviderError:
    """The provider error for anything raised while calling Google for ``what``."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        return from_http_error(exc, what)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        if getattr(exc, "retryable", False):
            return Transient(f"{what}: Google's token endpoint failed; try again later")
        # invalid_grant: the refresh token was revoked, expired or never valid.
        return Unauthorized(f"{what}: Google refused the stored refresh token ({exc.args[0]}); "
                            "the calendar account must be linked again")
    if isinstance(exc, google.auth.exceptions.TransportError):
        return Transient(f"{what}: could not reach Google's token endpoint: {exc}")
    if isinstance(exc, httplib2.HttpLib2Error | http.client.HTTPException | OSError):
        return Transient(f"{what}: could not reach Google: {type(exc).__name__}: {exc}")
    return Unavailable(f"{what}: unexpected failure talking to Google: {type(exc).__name__}")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run wire calls; any failure leaves as a :class:`ProviderError`."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        raise translate(exc, what) from exc
