"""The provider error tree: every upstream failure is translated once, in its adapter, into one
of these. Nothing from httpx, caldav, googleapiclient, exchangelib or msal leaves a provider.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider failure; ``str(exc)`` is safe to log and to show an operator."""


class Unauthorized(ProviderError):
    """The upstream refused our credentials: the profile needs relinking."""


NeedsRelink = Unauthorized


class Forbidden(ProviderError):
    """Authenticated, but not allowed to do this (read-only calendar, missing upstream scope)."""


class AdminApprovalRequired(Forbidden):
    """Linking: the user's organisation lets only an administrator approve the app."""


class AccessDeclined(Forbidden):
    """Linking: the user cancelled or declined on the upstream's consent page."""


class AccountNotAccepted(Forbidden):
    """Linking: the upstream or its organisation refuses this kind of account here."""


class NotFound(ProviderError):
    """The calendar or event does not exist upstream (any more)."""


class Conflict(ProviderError):
    """The resource changed upstream since we read it (etag mismatch) or already exists."""


class RateLimited(ProviderError):
    """The upstream asks us to slow down; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpired(ProviderError):
    """The incremental-sync cursor is no longer valid: do a full resync (never an API error)."""


class Unavailable(ProviderError):
    """The upstream could not be reached or failed (5xx, timeout, TLS, DNS): retry later."""


class InvalidInput(ProviderError):
    """The upstream rejected what we sent as malformed."""


# Finer kinds, so that whoever shows a failure to a person (the consent screen) can say what
# to do about it. Code that only retries or gives up keeps catching the base classes.


class Unreachable(Unavailable):
    """No answer at all: the host does not resolve, refuses the connection or times out."""


class CertificateInvalid(Unavailable):
    """TLS certificate verification failed: self-signed, expired, another name, unknown CA."""


class NotCalendarServer(InvalidInput):
    """The address answers, but not as a server of the provider's protocol (no CalDAV
    principal, say): the user gave a web site's address instead of the calendar server's."""
