"""How an Exchange mailbox is linked: the consent screen's form (email and password; the EWS
URL and a DOMAIN\\user login only when Autodiscover cannot find the server or the login
differs from the address), and the words for each way linking can fail."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import CertificateInvalid, ProviderError, Unauthorized, Unreachable
from ..outbound import BlockedAddress
from ..plugin import FormField, FormLinking
from .errors import AccountLocked, EwsDisabled, ExchangeOnline

REFUSED = ("Exchange did not accept that email address and password. Check the "
           "password; if your organisation signs you in as DOMAIN\\username, enter "
           "that under \"Sign-in name\".")
LOCKED = ("Your Exchange account is locked or disabled. Ask your IT helpdesk to unlock it, "
          "then try again.")
UNREACHABLE = ("Calgate could not reach your Exchange server. If your organisation gave you "
               "an Exchange (EWS) address, enter it under \"Server address\"; otherwise try "
               "again later.")
CERTIFICATE = ("Your Exchange server's security certificate could not be verified, so "
               "Calgate sent it nothing. If the server uses your organisation's own "
               "certificate authority, the operator of this service can add it "
               "(CALGATE_EXCHANGE_CA_BUNDLE).")
EWS_DISABLED = ("Your Exchange server does not allow calendar apps (Exchange Web Services) "
                "for this mailbox. Ask your Exchange administrator to enable EWS for it.")
ONLINE = ("This mailbox is in Exchange Online (Microsoft 365), which Calgate connects "
          "through your Microsoft sign-in, not with a password here. Choose Microsoft 365 "
          "to connect it.")
BLOCKED = ("That Exchange server is on a private network this Calgate server does not "
           "connect to. Ask the operator of this service to allow that network.")

# The registry entry's ``access_note``, shown on the consent screen once the mailbox is
# linked: Exchange keeps no grant for Calgate (it holds the password, not a token), so there
# is nothing to revoke upstream; disconnecting erases what Calgate stored.
NOTHING_TO_REVOKE = ("Your Exchange server keeps no permission for this app: Calgate signs "
                     "in with the password you enter here. Disconnecting this calendar "
                     "erases that password and the calendar copy Calgate keeps; nothing "
                     "is changed on your Exchange server. Changing your Exchange password "
                     "also ends this access.")

HINTS: dict[type[ProviderError], str] = {
    ExchangeOnline: ONLINE, EwsDisabled: EWS_DISABLED, AccountLocked: LOCKED,
    Unauthorized: REFUSED, CertificateInvalid: CERTIFICATE, BlockedAddress: BLOCKED,
    Unreachable: UNREACHABLE}


def _credentials(values: Mapping[str, str]) -> dict[str, str]:
    return {"email": values["email"].strip(), "password": values["password"],
            "ews_url": (values.get("ews_url") or "").strip(),
            "login": (values.get("login") or "").strip()}


EXCHANGE = FormLinking((
    FormField("email", "Email address", "email", autocomplete="username"),
    FormField("password", "Password", "password", autocomplete="current-password"),
    FormField("ews_url", "Server address (advanced)", "url", required=False,
              help="Only if Calgate cannot find your server: the EWS address, such as "
                   "https://mail.example.org/EWS/Exchange.asmx"),
    FormField("login", "Sign-in name (advanced)", required=False,
              help="Only if you sign in as DOMAIN\\username rather than your email "
                   "address")),
    _credentials, HINTS, elsewhere={ExchangeOnline: "office365"})
