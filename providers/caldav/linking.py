"""How CalDAV and iCloud accounts are linked: the consent screen's form and the credentials
the provider opens the account with (``provider.open_account``)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import Unauthorized
from ..plugin import FormField, FormLinking

ICLOUD_REFUSED = ("iCloud did not accept that Apple ID and password. iCloud needs an "
                  "app-specific password, not your Apple ID password: create one at "
                  "appleid.apple.com under Sign-In and Security, then try again with it.")


def _caldav(values: Mapping[str, str]) -> dict[str, str]:
    return {"server_url": values["server_url"].strip(), "username": values["username"].strip(),
            "password": values["password"]}


def _icloud(values: Mapping[str, str]) -> dict[str, str]:
    return {"preset": "icloud", "server_url": "", "username": values["username"].strip(),
            "password": values["password"]}


CALDAV = FormLinking((
    FormField("server_url", "Server address", "url",
              help="For example https://dav.example.com/ (Fastmail, Nextcloud, …)"),
    FormField("username", "Username", autocomplete="username"),
    FormField("password", "Password", "password", autocomplete="current-password")),
    _caldav)

ICLOUD = FormLinking((
    FormField("username", "Apple ID", "email", autocomplete="username"),
    FormField("password", "App-specific password", "password",
              help="Create one at appleid.apple.com under Sign-In and Security. "
                   "Your normal Apple ID password will not work.")),
    _icloud, {Unauthorized: ICLOUD_REFUSED})
