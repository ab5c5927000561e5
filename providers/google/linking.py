"""Google's half of upstream-OAuth linking (:class:`providers.plugin.UpstreamOAuth`): the
gateway's one upstream connector calls it for the authorization URL, the code exchange, the
granted-scope check and revocation. The scope table and the wire calls are in ``oauth``."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import AccessDeclined, InvalidInput, ProviderError
from ..plugin import AuthorizationRequest, UpstreamApp, UpstreamGrant
from ..registry import ProviderOptions
from . import oauth
from .config import GoogleEndpoints, settings_of


class GoogleOAuth:
    """Google's consent: least-privilege scopes, PKCE S256, offline access, incremental
    consent. Google lets the user untick permissions, hence :meth:`missing_scopes`."""

    vendor = "Google"
    hints: Mapping[type[ProviderError], str] = {}

    def __init__(self, options: ProviderOptions) -> None:
        self.endpoints: GoogleEndpoints = settings_of(options).endpoints
        self.timeout = options.timeout

    def authorization_url(self, app: UpstreamApp, request: AuthorizationRequest) -> str:
        # Google's OAuth is not OpenID here (no id_token is asked for), so no nonce.
        return oauth.authorization_url(
            oauth.GoogleApp(app.client_id, app.client_secret), self.endpoints,
            request.redirect_uri, oauth.upstream_scopes(request.scopes), request.state,
            request.code_verifier)

    def exchange_code(self, app: UpstreamApp, code: str, request: AuthorizationRequest
                      ) -> UpstreamGrant:
        grant = oauth.exchange_code(oauth.GoogleApp(app.client_id, app.client_secret),
                                    self.endpoints, code, request.redirect_uri,
                                    request.code_verifier, timeout=self.timeout)
        return UpstreamGrant(grant.refresh_token, grant.access_token, grant.granted_scopes)

    def missing_scopes(self, scopes: frozenset[str], grant: UpstreamGrant) -> tuple[str, ...]:
        missing = oauth.missing_scopes(oauth.upstream_scopes(scopes), grant.granted_scopes)
        return tuple(oauth.describe_scope(s) for s in missing)

    def revoke(self, app: UpstreamApp, grant: UpstreamGrant) -> None:
        oauth.revoke_token(self.endpoints, grant.refresh_token or grant.access_token,
                           timeout=self.timeout)

    def credentials(self, grant: UpstreamGrant) -> dict[str, str]:
        return {"refresh_token": grant.refresh_token or ""}

    def refusal(self, params: Mapping[str, str]) -> ProviderError:
        # Google answers access_denied when the user cancels; anything else is ours to fix.
        error = params.get("error", "")
        if error == "access_denied":
            return AccessDeclined("the user cancelled on Google's consent page")
        return InvalidInput(f"Google's sign-in answered {error or 'without a code'}")
