"""Linking a Google account: the consent screen's connect step for ``google``.

The user is sent to Google's authorization endpoint with the narrowest Google scopes that
serve what the client app asked for (one table: ``providers.google.oauth.SCOPE_TABLE``),
PKCE S256, ``access_type=offline`` and ``include_granted_scopes``, under the upstream app
of the client (its own Google project, so Google's screen shows its name) or the
deployment's default. Google lets the user untick permissions: the granted scopes are
compared with the needed ones, and a grant that lacks one is revoked at once and never
linked. Otherwise the account is verified with a real call (the primary calendar's id is
the account's email) and only the refresh token plus *which* app it belongs to is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from providers.errors import ProviderError
from providers.google import oauth
from providers.model import AccountInfo
from providers.registry import ProviderOptions, open_account

from ..secrets import SecretStoreUnavailable
from .link_errors import explain, report
from .linking import ScopesWithheld, VerificationFailed, VerifiedAccount
from .upstream_apps import AppNotConfigured, UpstreamApps

UNREADABLE = ("Google Calendar could not be read with the access you gave. Please try again "
              "in a few minutes.")


@dataclass(frozen=True, slots=True)
class GoogleConnector:
    apps: UpstreamApps
    options: ProviderOptions
    name: str = "google"
    display_name: str = "Google Calendar"
    provider_name: str = "google"
    provider_service: str = "google"

    def configured(self, client_id: str) -> bool:
        """Offered only once the operator (or the client app) has set up a Google app.

        While the secret store is unavailable (a sealed Vault) nobody can tell, and nothing
        can be linked anyway: the choice stays on the page and linking answers 503, as it
        does for every provider, rather than the page itself failing."""
        try:
            self.apps.for_client(self.name, client_id)
        except AppNotConfigured:
            return False
        except SecretStoreUnavailable:
            return True
        return True

    def _app(self, client_id: str) -> tuple[oauth.GoogleApp, str]:
        """The Google app to link with and who owns it (``default`` or ``client:<id>``)."""
        try:
            app = self.apps.for_client("google", client_id)
        except AppNotConfigured:
            raise VerificationFailed("Google Calendar is not set up on this Calgate server "
                                     "yet. Please tell the app's support team.") from None
        return oauth.GoogleApp(app.client_id, app.client_secret), app.owner

    def authorization_url(self, client_id: str, scopes: frozenset[str], redirect_uri: str,
                          state: str, code_verifier: str) -> str:
        return oauth.authorization_url(
            self._app(client_id)[0], oauth.endpoints(self.options), redirect_uri,
            oauth.upstream_scopes(scopes), state, code_verifier)

    def complete(self, client_id: str, scopes: frozenset[str], redirect_uri: str, code: str,
                 code_verifier: str) -> VerifiedAccount:
        app, owner = self._app(client_id)
        endpoints = oauth.endpoints(self.options)
        try:
            grant = oauth.exchange_code(app, endpoints, code, redirect_uri, code_verifier)
        except ProviderError as exc:
            report(self.name, exc)
            raise VerificationFailed("Google did not accept the sign-in. Please try "
                                     "again.") from exc
        missing = oauth.missing_scopes(oauth.upstream_scopes(scopes), grant.granted_scopes)
        if missing:
            # Never keep a half-working grant: give it back to Google at once.
            with contextlib.suppress(ProviderError):
                oauth.revoke_token(endpoints, grant.refresh_token or grant.access_token)
            raise ScopesWithheld(
                "Google's screen let you untick some permissions, and the app needs "
                f"{'this one' if len(missing) == 1 else 'these'} to work.",
                [oauth.describe_scope(s) for s in missing])
        if not grant.refresh_token:
            raise VerificationFailed("Google did not grant lasting access. Please try again.")
        stored = {"refresh_token": grant.refresh_token, "app": owner}
        credentials = stored | {"client_id": app.client_id, "client_secret": app.client_secret}
        try:
            info = asyncio.run(self._verify(credentials))
        except ProviderError as exc:
            raise VerificationFailed(explain(self.name, exc, {ProviderError: UNREADABLE})) from exc
        return VerifiedAccount(profile_name=info.profile_name, upstream_id=info.upstream_id,
                               credentials=stored)

    async def _verify(self, credentials: dict[str, str]) -> AccountInfo:
        provider = open_account("google", credentials, self.options)
        try:
            return await provider.verify()
        finally:
            await provider.close()
