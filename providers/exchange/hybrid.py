"""Exchange Server in a hybrid configuration with modern authentication: the mailbox signs in
at Microsoft's identity platform (Microsoft Entra), as Outlook does there, and EWS takes the
bearer token (OAuth) instead of a password.

The operator names the on-premises EWS URL (``CALGATE_EXCHANGE_OAUTH_EWS_URL``) and
registers an Entra app allowed to act as the user on that Exchange resource (the delegated
``EWS.AccessAsUser.All`` of the server's URL, which hybrid modern authentication adds to
Entra). The user picks "Exchange (Microsoft sign-in)" on the consent screen, signs in at
Microsoft (msal, PKCE, state and nonce, exactly as for Microsoft 365) and Calgate keeps the
refresh token; every EWS session gets a fresh access token for
``https://<ews-host>/EWS.AccessAsUser.All``.
https://learn.microsoft.com/exchange/plan-and-deploy/post-installation-tasks/enable-modern-auth-in-exchange-server-on-premises
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from ..errors import Forbidden, InvalidInput
from ..microsoft import oauth
from ..microsoft.config import settings_of as graph_settings_of
from ..microsoft.credentials import AccountSecrets
from ..microsoft.linking import REMOVE_WORK_ACCESS, GraphGrant, MicrosoftOAuth
from ..plugin import AuthorizationRequest, UpstreamApp, UpstreamGrant
from ..registry import ProviderOptions
from .client import Connection, EwsClient
from .config import settings_of
from .provider import EwsProvider

# Microsoft keeps the delegated grant (Graph cannot revoke one), as for Microsoft 365.
REMOVE_ACCESS = REMOVE_WORK_ACCESS
NOT_CONFIGURED = ("The operator of this service has not named the Exchange server for "
                  "Microsoft sign-in (CALGATE_EXCHANGE_OAUTH_EWS_URL).")


def ews_scope(ews_url: str) -> str:
    """The delegated permission on the on-premises EWS resource (its host's origin)."""
    return f"https://{urlsplit(ews_url).netloc}/EWS.AccessAsUser.All"


@dataclass(frozen=True, slots=True)
class HybridGrant(GraphGrant):
    """A code exchange's grant, with the mailbox address the ID token names."""

    email: str = ""


class HybridOAuth(MicrosoftOAuth):
    """Microsoft's sign-in for one permission: EWS on the operator's Exchange server."""

    vendor = "Microsoft"
    audience = "organizations"  # hybrid mailboxes are work accounts of the organisation

    def __init__(self, options: ProviderOptions) -> None:
        super().__init__(options)
        self.ews_url = settings_of(options).oauth_ews_url

    def _scopes(self) -> list[str]:
        if not self.ews_url:
            raise InvalidInput(NOT_CONFIGURED)
        return [ews_scope(self.ews_url)]

    def authorization_url(self, app: UpstreamApp, request: AuthorizationRequest) -> str:
        return oauth.authorization_url(
            self.signin, _entra(app), self._scopes(), request.redirect_uri, request.state,
            request.code_verifier, request.nonce)

    def exchange_code(self, app: UpstreamApp, code: str, request: AuthorizationRequest
                      ) -> UpstreamGrant:
        result: dict[str, Any] = oauth.redeem_code(
            self.signin, _entra(app), self._scopes(), request.redirect_uri, code,
            request.code_verifier, request.nonce)
        secrets = oauth.account_secrets(self.settings, _entra(app), result)
        claims = cast(Mapping[str, Any], result.get("id_token_claims") or {})
        email = str(claims.get("email") or claims.get("preferred_username") or "")
        return HybridGrant(secrets.refresh_token, str(result["access_token"]),
                           frozenset(oauth.granted(result)), secrets, email)

    def missing_scopes(self, scopes: frozenset[str], grant: UpstreamGrant) -> tuple[str, ...]:
        wanted = self._scopes()[0].lower()
        granted = {s.lower() for s in grant.granted_scopes}
        return () if wanted in granted else ("Access your Exchange mailbox",)

    def credentials(self, grant: UpstreamGrant) -> dict[str, str]:
        if not isinstance(grant, HybridGrant) or grant.secrets is None or not grant.email:
            raise Forbidden("Microsoft's answer names no mailbox for this sign-in")
        kept = super().credentials(grant)
        return kept | {"email": grant.email, "ews_url": self.ews_url}


def _entra(app: UpstreamApp) -> oauth.EntraApp:
    return oauth.EntraApp(app.client_id, app.client_secret or None)


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> EwsProvider:
    """A mailbox whose EWS sessions carry a bearer token from its stored Microsoft grant
    (``refresh_token``, ``account_id``, ``tenant``, ``scopes``, the app's ``client_id``
    and ``client_secret`` merged in by the gateway, ``email`` and ``ews_url``)."""
    settings = settings_of(options)
    secrets = AccountSecrets.from_mapping(credentials)
    ews_url = credentials.get("ews_url") or settings.oauth_ews_url
    if not ews_url:
        raise InvalidInput(NOT_CONFIGURED)
    connection = Connection(email=credentials.get("email", ""), password="", ews_url=ews_url,
                            auth="oauth", ca_bundle=settings.ca_bundle,
                            timeout=settings.timeout)
    tokens = oauth.TokenSource(graph_settings_of(options), secrets)
    return EwsProvider(EwsClient(connection, options.outbound, tokens))

