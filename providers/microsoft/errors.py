"""Graph and identity-platform failures onto the provider error tree, once, at the adapter's
boundary.

Three sources: a Graph answer (HTTP status, ``error.code`` in the JSON body, Retry-After),
an identity-platform error (msal's result dict, or the ``error``/``error_description`` query
of the authorization redirect, both carrying ``AADSTS<n>`` codes), and httpx transport
exceptions. Callers see only :mod:`providers.errors` classes (the finer kinds here subclass
them); nothing from httpx or msal leaves :func:`translated`.

References: https://learn.microsoft.com/graph/errors,
https://learn.microsoft.com/graph/throttling,
https://learn.microsoft.com/graph/delta-query-overview (410 on an expired token),
https://learn.microsoft.com/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from ..errors import (
    AccessDeclined,
    AccountNotAccepted,
    AdminApprovalRequired,
    CertificateInvalid,
    Conflict,
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unreachable,
)


class Throttled(RateLimited):
    """429, or 503/504 with Retry-After: Graph's throttling; retried per mailbox."""


class Transient(Unavailable):
    """Another 5xx or a 408: retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PreconditionFailed(Conflict):
    """412: the If-Match ETag is stale."""


class AdminConsentRequired(AdminApprovalRequired):
    """AADSTS65001/90094/90095: the tenant lets only an administrator consent to the app."""


class ConsentDeclined(AccessDeclined):
    """The user cancelled or declined on Microsoft's consent page (access_denied, 65004)."""


class AccountTypeRefused(AccountNotAccepted):
    """The app's registration or the tenant refuses this kind of account (a personal account
    at a work-only app, a guest the tenant does not know, a single-tenant app at /common)."""


class AppCredentialsRejected(Unavailable):
    """The deployment's client id or secret is wrong or expired: an operator must fix the
    Entra app registration. Not the user's grant, so the profile is not disconnected."""


# Graph error.code values (https://learn.microsoft.com/graph/errors and the delta docs).
SYNC_EXPIRED = frozenset({"syncStateNotFound", "syncStateInvalid", "resyncRequired"})

# AADSTS codes -> the error to raise and what to tell a person.
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes
RELINK = frozenset({
    70000,  # InvalidGrant: the refresh token is not valid (revoked, or another client's)
    700082,  # ExpiredOrRevokedGrantInactiveToken: the refresh token expired from inactivity
    50173,  # FreshTokenNeeded: the grant was revoked (password change, admin action)
    50076, 50079, 50158,  # MFA / an external challenge now required: interaction needed
    700084,  # the refresh token's lifetime ended
})
ADMIN_CONSENT = frozenset({65001, 90094, 90095})
DECLINED = frozenset({65004})
ACCOUNT_REFUSED = frozenset({
    50020,  # the user's account does not exist in (and is not a guest of) the tenant
    50194,  # the app is single-tenant but was used at /common
    9002331,  # the app accepts personal Microsoft accounts only
    90072,  # the external account is not in the tenant
    500200,  # a personal account at an app that accepts work or school accounts only
})
APP_CREDENTIALS = frozenset({7000215, 7000222, 700016, 7000218, 50011})

ADMIN_HINT = (
    "Your organisation only lets an administrator approve this app. Ask your Microsoft 365 "
    "administrator to grant admin consent for it (Microsoft Entra admin center: Enterprise "
    "applications, the app, Permissions, 'Grant admin consent'), then link again.")
DECLINED_HINT = "You cancelled on Microsoft's page, so nothing was linked. Try again to link."
ACCOUNT_HINT = (
    "This kind of Microsoft account cannot be linked here: the organisation or the app "
    "registration does not accept it. Try a different account, or ask the operator which "
    "accounts (work or school, personal) the deployment accepts.")
AADSTS = re.compile(r"AADSTS(\d+)")


def retry_after(headers: Mapping[str, str] | httpx.Headers) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 s10.2.3)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def graph_error_code(body: object) -> tuple[str, str]:
    """Graph's ``error.code`` and ``error.message`` from a decoded JSON body."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def from_graph(status: int, code: str, message: str, headers: Mapping[str, str] | httpx.Headers,
               what: str) -> ProviderError:
    """The provider error for a Graph answer with a non-2xx ``status``."""
    text = f"{what}: Microsoft Graph answered {status}" + (f" {code}" if code else "") + (
        f": {message}" if message else "")
    wait = retry_after(headers)
    if status == 429 or (status in (503, 504) and wait is not None):
        return Throttled(text, wait)
    if status >= 500 or status == 408:
        return Transient(text, wait)
    if status == 410:
        return CursorExpired(text) if code in SYNC_EXPIRED or not code else NotFound(text)
    kinds: dict[int, type[ProviderError]] = {
        400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
        412: PreconditionFailed}
    return kinds.get(status, InvalidInput)(text)


def from_response(response: httpx.Response, what: str) -> ProviderError:
    """:func:`from_graph` for an httpx response (a body that is not JSON is tolerated)."""
    try:
        body: object = response.json()
    except ValueError:
        body = None
    code, message = graph_error_code(body)
    return from_graph(response.status_code, code, message, response.headers, what)


def aadsts_codes(result: Mapping[str, object]) -> tuple[int, ...]:
    """The AADSTS codes of an identity error: ``error_codes`` (token endpoint JSON) or the
    ``AADSTS<n>`` prefixes in ``error_description`` (the authorization redirect)."""
    raw = result.get("error_codes")
    if isinstance(raw, list) and raw:
        return tuple(int(c) for c in raw if isinstance(c, int | str) and str(c).isdigit())
    return tuple(int(c) for c in AADSTS.findall(str(result.get("error_description") or "")))


def from_identity(result: Mapping[str, object], what: str, *,
                  linking: bool = False) -> ProviderError:
    """The provider error for an identity-platform error: msal's result dict for a token
    call, or the query parameters of the authorization redirect.

    While ``linking``, consent and account problems get their own kinds, for the page that
    tells the user what to do. Outside linking (refreshing a stored grant) they all mean the
    grant no longer works: Unauthorized, so the profile is marked disconnected."""
    error = str(result.get("error") or "")
    codes = set(aadsts_codes(result))
    description = str(result.get("error_description") or "").split("\r\n")[0]
    text = f"{what}: Microsoft sign-in answered {error}" + (
        f" ({description})" if description else "")
    # AADSTS9002331 and kin arrive as unauthorized_client: an account, not the app.
    client_error = error in ("invalid_client", "unauthorized_client") and not (
        codes & ACCOUNT_REFUSED)
    if codes & APP_CREDENTIALS or client_error:
        return AppCredentialsRejected(f"{text}; the operator must check the Entra app "
                                      "registration (client id, secret, redirect URI)")
    if error in ("temporarily_unavailable", "server_error"):
        return Transient(text)
    if not linking and (error or codes):
        hint = ADMIN_HINT + " " if codes & ADMIN_CONSENT else ""
        return Unauthorized(f"{hint}{text}; the calendar account must be linked again")
    if codes & ADMIN_CONSENT:
        return AdminConsentRequired(f"{ADMIN_HINT} [{text}]")
    if codes & DECLINED or (error == "access_denied" and not codes & ACCOUNT_REFUSED):
        return ConsentDeclined(f"{DECLINED_HINT} [{text}]")
    if codes & ACCOUNT_REFUSED:
        return AccountTypeRefused(f"{ACCOUNT_HINT} [{text}]")
    if codes & RELINK or error in ("invalid_grant", "interaction_required", "consent_required"):
        return Unauthorized(f"{text}; the calendar account must be linked again")
    return InvalidInput(text)


def translate(exc: BaseException, what: str) -> ProviderError:
    """The provider error for anything raised while calling Microsoft for ``what``."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        return from_response(exc.response, what)
    if _is_certificate_failure(exc):
        return CertificateInvalid(f"{what}: TLS certificate verification failed: {exc}")
    if isinstance(exc, httpx.TimeoutException | httpx.ConnectError):
        return Unreachable(f"{what}: could not reach Microsoft: {type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.TransportError | OSError):
        return Transient(f"{what}: the connection to Microsoft failed: "
                         f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.InvalidURL):
        return InvalidInput(f"{what}: not a usable Microsoft address: {exc}")
    return Unavailable(f"{what}: unexpected failure talking to Microsoft: "
                       f"{type(exc).__name__}")


def _is_certificate_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run wire calls; any failure leaves as a :class:`ProviderError`."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        raise translate(exc, what) from exc
