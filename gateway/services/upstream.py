"""Linking through a provider's own OAuth server: the consent screen's connect step for every
redirect provider in the registry.

The user is sent to the upstream's authorization endpoint with the narrowest upstream scopes
that serve what the client app asked for (the provider's own table), PKCE S256, under the
upstream app of the client (its own, so the upstream's screen shows its name) or the
deployment's default. Some upstreams let the user untick permissions: the granted scopes are
compared with the needed ones, and a grant that lacks one is given back at once and never
linked. Otherwise the account is verified with a real call and only what the provider keeps
(a refresh token) plus *which* app it belongs to is stored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from providers.errors import (
    AccessDeclined,
    AccountNotAccepted,
    AdminApprovalRequired,
    ProviderError,
)
from providers.plugin import AuthorizationRequest, UpstreamApp, UpstreamOAuth
from providers.registry import ProviderOptions

from ..domain.upstream_apps import AppNotConfigured, UpstreamApps
from ..secrets import SecretStoreUnavailable
from .link_errors import explain, report
from .linking import (
    CALENDARS_UNREADABLE,
    CalendarsUnreadable,
    EntryConnector,
    ScopesWithheld,
    VerificationFailed,
    VerifiedAccount,
    inspect,
    verified,
)

# What the user decided or their organisation decided, at the upstream: each has its own page.
CONSENT_REFUSED = (AccessDeclined, AdminApprovalRequired, AccountNotAccepted)
# Calgate's scope for the organisation's rooms (GET /v1/resources): its upstream permission
# needs an administrator, so a provider without rooms is never asked for it.
ROOMS_SCOPE = "read_resources"


@dataclass(frozen=True, slots=True)
class UpstreamConnector(EntryConnector):
    """A :class:`gateway.services.linking.RedirectConnector` for one registry entry."""

    oauth: UpstreamOAuth
    apps: UpstreamApps
    options: ProviderOptions

    def configured(self, client_id: str) -> bool:
        """Offered only once the operator (or the client app) has set up an upstream app.

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

    def _app(self, client_id: str) -> tuple[UpstreamApp, str]:
        """The upstream app to link with and who owns it (``default`` or ``client:<id>``)."""
        try:
            app = self.apps.for_client(self.name, client_id)
        except AppNotConfigured:
            raise VerificationFailed(f"{self.display_name} is not set up on this Calgate "
                                     "server yet. Please tell the app's support team.") from None
        return UpstreamApp(app.client_id, app.client_secret), app.owner

    def _upstream(self, scopes: frozenset[str]) -> frozenset[str]:
        """What the upstream is asked to serve: without the rooms scope where the entry
        has no rooms (personal accounts), as the upstream would refuse or never use it."""
        return scopes if self.entry.capabilities.resources else scopes - {ROOMS_SCOPE}

    def authorization_url(self, client_id: str, scopes: frozenset[str], redirect_uri: str,
                          state: str, code_verifier: str) -> str:
        return self.oauth.authorization_url(self._app(client_id)[0], AuthorizationRequest(
            redirect_uri, self._upstream(scopes), state, code_verifier,
            _nonce(code_verifier)))

    def complete(self, client_id: str, scopes: frozenset[str], redirect_uri: str, code: str,
                 code_verifier: str) -> VerifiedAccount:
        scopes = self._upstream(scopes)
        app, owner = self._app(client_id)
        request = AuthorizationRequest(redirect_uri, scopes, "", code_verifier,
                                       _nonce(code_verifier))
        vendor = self.oauth.vendor
        try:
            grant = self.oauth.exchange_code(app, code, request)
        except CONSENT_REFUSED as exc:  # the token endpoint may say so too
            raise VerificationFailed(explain(self.name, exc, self.oauth.hints)) from exc
        except ProviderError as exc:
            report(self.name, exc)
            raise VerificationFailed(f"{vendor} did not accept the sign-in. Please try "
                                     "again.") from exc
        missing = self.oauth.missing_scopes(scopes, grant)
        if missing:
            # Never keep a half-working grant: give it back to the upstream at once.
            with contextlib.suppress(ProviderError):
                self.oauth.revoke(app, grant)
            raise ScopesWithheld(
                f"{vendor}'s screen let you untick some permissions, and the app needs "
                f"{'this one' if len(missing) == 1 else 'these'} to work.", missing)
        if not grant.refresh_token:
            raise VerificationFailed(f"{vendor} did not grant lasting access. Please try "
                                     "again.")
        stored = self.oauth.credentials(grant) | {"app": owner}
        credentials = stored | {"client_id": app.client_id, "client_secret": app.client_secret}
        try:
            info, calendars = asyncio.run(inspect(self.entry, credentials, self.options))
        except ProviderError as exc:
            unreadable = (f"{self.display_name} could not be read with the access you gave. "
                          "Please try again in a few minutes.")
            raise VerificationFailed(explain(self.name, exc, {ProviderError: unreadable})) from exc
        except CalendarsUnreadable as exc:
            report(self.name, exc.error)
            raise VerificationFailed(CALENDARS_UNREADABLE) from exc
        return verified(info, calendars, stored)

    def refused(self, params: Mapping[str, str]) -> str:
        """The sentence for an authorization redirect that carries an ``error``."""
        error = self.oauth.refusal(params)
        if not isinstance(error, CONSENT_REFUSED):
            report(self.name, error)
            return ""
        return explain(self.name, error, self.oauth.hints)



def _nonce(code_verifier: str) -> str:
    """An OpenID nonce both steps can compute: the flow's PKCE verifier is secret, unique per
    flow and present at the callback, so the ID token can be checked against it there."""
    digest = hashlib.sha256(b"nonce:" + code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
