"""exchangelib's and requests' failures as provider errors, translated once here.
https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode"""

from __future__ import annotations

import requests
from exchangelib import errors as ews

from ..errors import (
    AccountNotAccepted,
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
from .retry import busy_hint


class EwsDisabled(Forbidden):
    """The server refuses EWS for this mailbox (``Set-CASMailbox -EwsEnabled $false``,
    or an EWS application policy): IIS answers 403."""


class ExchangeOnline(AccountNotAccepted):
    """The mailbox is in Exchange Online, which Calgate reaches through Microsoft Graph."""


class AccountLocked(Unauthorized):
    """The directory locked the account after too many wrong passwords (IIS answers 401
    with Windows' "currently locked out" text), or disabled it (``ErrorAccountDisabled``)."""


LOCKED_OUT_TEXT = "currently locked out"  # in IIS's 401 page and exchangelib's error


# Response codes -> provider errors; the first matching class wins.
_TABLE: tuple[tuple[type[Exception], type[ProviderError]], ...] = (
    (ews.ErrorInvalidSyncStateData, CursorExpired),
    (ews.ErrorIrresolvableConflict, Conflict),
    (ews.ErrorItemNotFound, NotFound),
    (ews.ErrorFolderNotFound, NotFound),
    (ews.ErrorAccessDenied, Forbidden),
    (ews.ErrorAccountDisabled, AccountLocked),
    (ews.UnauthorizedError, Unauthorized),
    (ews.ErrorInvalidIdMalformed, NotFound),
    (ews.ErrorCalendarOccurrenceIsDeletedFromRecurrence, NotFound),
    (ews.ErrorInvalidPropertySet, InvalidInput),
    (ews.ErrorInvalidPropertyRequest, InvalidInput),
    (ews.ErrorSchemaValidation, InvalidInput),
    (ews.ErrorInvalidOperation, InvalidInput),  # e.g. answering one's own meeting
)


def translate(exc: BaseException) -> ProviderError:
    """The provider error ``exc`` stands for (its text is safe to log: no item contents)."""
    if isinstance(exc, ProviderError):
        return exc  # the outbound guard's refusals, or ours
    network = _network_cause(exc)  # exchangelib re-raises these as its own transport errors
    if network is not None:
        return network
    if isinstance(exc, ews.UnauthorizedError) and LOCKED_OUT_TEXT in str(exc):
        return AccountLocked("Exchange: the account is locked out")
    if isinstance(exc, ews.ErrorServerBusy):
        hint = busy_hint(exc)
        if hint is None:  # exchangelib's name for a 503 (or a lost connection)
            return Unavailable("Exchange is unavailable (HTTP 503)")
        return RateLimited("Exchange is busy", retry_after=hint)
    for kind, ours in _TABLE:
        if isinstance(exc, kind):
            return ours(f"Exchange: {type(exc).__name__}")
    if isinstance(exc, ews.CASError | ews.TransportError):
        return _transport(exc)
    if isinstance(exc, ews.ResponseMessageError):
        return InvalidInput(f"Exchange refused the request: {type(exc).__name__}")
    return Unavailable(f"Exchange failed: {type(exc).__name__}")


def _network_cause(exc: BaseException) -> ProviderError | None:
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short; never loop on a cycle
        if seen is None:
            return None
        if isinstance(seen, ProviderError):
            return seen
        if isinstance(seen, requests.exceptions.SSLError):
            return CertificateInvalid("Exchange: TLS verification failed")
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return Unreachable(f"Exchange did not answer: {type(seen).__name__}")
        seen = seen.__cause__ or seen.__context__
    return None


def _transport(exc: Exception) -> ProviderError:
    text = str(exc)
    if "Code: 403" in text:
        return EwsDisabled("Exchange refused EWS for this mailbox (HTTP 403)")
    if "Code: 401" in text:
        return Unauthorized("Exchange refused the credentials (HTTP 401)")
    return Unavailable(f"Exchange transport failure: {type(exc).__name__}")
