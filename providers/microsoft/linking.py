"""Microsoft's half of upstream-OAuth linking (:class:`providers.plugin.UpstreamOAuth`) for the
two registry entries: ``office365`` (work or school accounts, Microsoft 365) and
``live_connect`` (personal accounts, Outlook.com). The gateway's one upstream connector calls
it for the authorization URL, the code exchange, the granted-scope check and revocation; the
msal calls are in :mod:`.oauth`, the permission table in :mod:`.scopes`.

Each entry signs in at the authority for its kind of account, so choosing "Outlook.com" and
signing in with a work account (or the reverse) ends on the page that says so, instead of
linking an account under the wrong provider name. An operator who pins a tenant
(``CALGATE_OFFICE365_TENANT``) pins both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ProviderError
from ..plugin import AuthorizationRequest, UpstreamApp, UpstreamGrant
from ..registry import ProviderOptions
from . import oauth
from .config import COMMON_TENANT, GraphSettings, settings_of
from .credentials import TOKENS, AccountSecrets
from .errors import ADMIN_HINT, AccountTypeRefused, AdminConsentRequired, from_identity
from .scopes import describe_scope, graph_scopes, missing_scopes

# Where a user removes the app's access (the registry entries' ``access_note``, shown on the
# consent screen once the account is linked): Graph has no call that revokes one delegated
# grant (an administrator can delete a tenant's oauth2PermissionGrant, a user cannot).
# https://learn.microsoft.com/graph/api/oauth2permissiongrant-delete
_KEPT = ("Microsoft keeps the permission you gave on its page, even after you disconnect "
         "this calendar. To remove it, ")
REMOVE_WORK_ACCESS = _KEPT + (
    "go to https://myapps.microsoft.com, choose the app, then \"Manage your application\" "
    "(or start from https://myaccount.microsoft.com).")
REMOVE_PERSONAL_ACCESS = _KEPT + "go to https://account.live.com/consent/Manage."
HINTS: dict[type[ProviderError], str] = {
    AdminConsentRequired: ADMIN_HINT,
    AccountTypeRefused: "This kind of Microsoft account cannot be linked here. Choose "
                        "\"Microsoft 365\" for a work or school account and \"Outlook.com\" "
                        "for a personal one (Outlook.com, Hotmail, Live); if you did, the "
                        "organisation does not let this account use the app.",
}


@dataclass(frozen=True, slots=True)
class GraphGrant(UpstreamGrant):
    """A code exchange's grant, with what the ID token said about the account."""

    secrets: AccountSecrets | None = None


class MicrosoftOAuth:
    """Microsoft's consent through msal: least-privilege delegated permissions, PKCE S256,
    ``state`` and ``nonce``, ``offline_access``. The consent page lets the user decline and
    a tenant may grant less than asked, hence :meth:`missing_scopes`."""

    vendor = "Microsoft"
    hints = HINTS
    # "common" would let either kind of account in; each entry takes only its own.
    audience = COMMON_TENANT

    def __init__(self, options: ProviderOptions) -> None:
        self.settings: GraphSettings = settings_of(options)
        tenant = self.settings.tenant
        self.signin = (self.settings if tenant != COMMON_TENANT
                       else dataclasses.replace(self.settings, tenant=self.audience))

    def authorization_url(self, app: UpstreamApp, request: AuthorizationRequest) -> str:
        return oauth.authorization_url(
            self.signin, _entra(app), graph_scopes(request.scopes), request.redirect_uri,
            request.state, request.code_verifier, request.nonce)

    def exchange_code(self, app: UpstreamApp, code: str, request: AuthorizationRequest
                      ) -> UpstreamGrant:
        result: dict[str, Any] = oauth.redeem_code(
            self.signin, _entra(app), graph_scopes(request.scopes), request.redirect_uri,
            code, request.code_verifier, request.nonce)
        # Cached under the deployment's authority, where the provider will look for it.
        secrets = oauth.account_secrets(self.settings, _entra(app), result)
        return GraphGrant(secrets.refresh_token, str(result["access_token"]),
                          frozenset(oauth.granted(result)), secrets)

    def refusal(self, params: dict[str, str]) -> ProviderError:
        """What the authorization redirect's ``error`` and ``error_description`` mean."""
        return from_identity(params, "sign-in", linking=True)

    def missing_scopes(self, scopes: frozenset[str], grant: UpstreamGrant) -> tuple[str, ...]:
        lacking = missing_scopes(graph_scopes(scopes), grant.granted_scopes)
        return tuple(describe_scope(s) for s in lacking)

    def revoke(self, app: UpstreamApp, grant: UpstreamGrant) -> None:
        """Graph cannot revoke one delegated grant: forget the tokens Calgate holds (the
        gateway erases the refresh token); :data:`REMOVE_WORK_ACCESS` and
        :data:`REMOVE_PERSONAL_ACCESS` tell the user the rest."""
        if grant.refresh_token:
            TOKENS.drop(TOKENS.key(self.settings.authority, app.client_id,
                                   grant.refresh_token))

    def credentials(self, grant: UpstreamGrant) -> dict[str, str]:
        if not isinstance(grant, GraphGrant) or grant.secrets is None:
            raise TypeError("a Microsoft grant comes from MicrosoftOAuth.exchange_code")
        kept = grant.secrets.to_mapping()
        # The app's id and secret are merged in by the gateway when the account is opened.
        kept.pop("client_id", None)
        kept.pop("client_secret", None)
        return kept


class Office365OAuth(MicrosoftOAuth):
    """Microsoft 365: work or school accounts of any organisation."""

    audience = "organizations"


class LiveConnectOAuth(MicrosoftOAuth):
    """Outlook.com: personal Microsoft accounts."""

    audience = "consumers"


def _entra(app: UpstreamApp) -> oauth.EntraApp:
    return oauth.EntraApp(app.client_id, app.client_secret or None)
