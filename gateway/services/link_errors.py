"""What the consent screen says when an account cannot be linked: one table, by error type.

A provider error's text is for the operator (it names hosts, HTTP statuses and the library's
exception), so it goes to the log; the person linking a calendar reads one of these plain
sentences instead, which say what to do next. The first row whose type matches wins, so the
finer kinds come before their base classes.

Addresses refused by the outbound guard (``providers.outbound``) have rows of their own: the
person needs to hear that the address is not one this server may reach, not that it is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from providers.errors import (
    AccessDeclined,
    AccountNotAccepted,
    AdminApprovalRequired,
    CertificateInvalid,
    Forbidden,
    InvalidInput,
    NotCalendarServer,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from providers.outbound import BlockedAddress, RedirectRefused

log = logging.getLogger("calgate.linking")

CREDENTIALS_REFUSED = ("The server did not accept that username and password. Check them "
                       "and try again. Some providers want an app-specific password here, "
                       "not the one you sign in with.")
MESSAGES: tuple[tuple[type[ProviderError], str], ...] = (
    (AdminApprovalRequired, "Your organisation lets only an administrator approve this app. "
                            "Ask your IT administrator to approve it for your organisation "
                            "(to grant consent to its calendar permissions), then link "
                            "again."),
    (AccessDeclined, "You cancelled on the sign-in page."),
    (AccountNotAccepted, "This account cannot be linked here: the provider or your "
                         "organisation does not accept this kind of account for this app. "
                         "Try a different account."),
    (Unauthorized, CREDENTIALS_REFUSED),
    (CertificateInvalid, "The server's security certificate could not be verified, so Calgate "
                         "sent it nothing. Check the address. If it is right, the certificate "
                         "has expired, is self-signed or names another server: its "
                         "administrator needs to fix it."),
    (NotCalendarServer, "The server at that address answered, but it is not a calendar "
                        "server. Check the address: your provider's help pages give the one "
                        "for calendar apps."),
    (BlockedAddress, "That address leads to a private or local network, which this Calgate "
                     "server does not connect to. Use your calendar server's public address; "
                     "if it has none, ask the operator of this service to allow that network."),
    (RedirectRefused, "The server at that address sent Calgate on to another address that it "
                      "will not follow. Enter the address your provider gives for calendar "
                      "apps, including https://."),
    (RateLimited, "The server is busy and asked Calgate to slow down. Try again in a few "
                  "minutes."),
    (Unavailable, "Calgate could not reach a server at that address. Check the address, or "
                  "try again later if the server is down."),
    (NotFound, "There is no calendar at that address. Check the address and try again."),
    (Forbidden, "The server refused access to this account's calendars. Check that the "
                "account may use calendar apps, and try again."),
    (InvalidInput, "Calgate cannot use that address. Check that it is the full address of "
                   "your calendar server (https://…)."),
)
FALLBACK = "Your calendar could not be linked. Please try again later."


def user_message(error: ProviderError) -> str:
    """The plain sentence for ``error``; never its text."""
    return next((text for kind, text in MESSAGES if isinstance(error, kind)), FALLBACK)


def explain(provider: str, error: ProviderError,
            hints: Mapping[type[ProviderError], str] | None = None) -> str:
    """Log ``error`` for the operator and return what to tell the user. ``hints``: a
    connector's own sentence for an error type (iCloud's app-specific password)."""
    report(provider, error)
    own = next((text for kind, text in (hints or {}).items() if isinstance(error, kind)), None)
    return own or user_message(error)


def report(provider: str, error: ProviderError) -> None:
    """The detail, for the operator's log only."""
    log.warning("linking a %s account failed: %s: %s", provider, type(error).__name__, error)
