"""gateway's side of oauth_server's ports: providers on the consent screen, linking, erasing.

Part of the composition root: the only gateway module besides ``app`` and the CLI that
imports oauth_server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oauth_server.endpoints import APPLICATION_SCOPE
from oauth_server.ports import (
    ConnectFailed,
    ConnectField,
    LinkedProfile,
    PendingLink,
    ProviderChoice,
    UpstreamRequest,
    UpstreamScopesMissing,
)
from oauth_server.scopes import expand

from .services.accounts import AccountService, PendingAccount
from .services.application_calendars import ApplicationCalendars
from .services.linking import (
    ConnectorRegistry,
    RedirectConnector,
    ScopesWithheld,
    VerificationFailed,
    VerifiedAccount,
)


class GatewayAccountHost:
    """Implements :class:`oauth_server.ports.AccountHost` over gateway's services."""

    def __init__(self, accounts: AccountService, connectors: ConnectorRegistry,
                 application_calendars: ApplicationCalendars) -> None:
        self.accounts = accounts
        self.connectors = connectors
        self.application_calendars = application_calendars

    def provider_choices(self, client_id: str) -> Sequence[ProviderChoice]:
        return [
            ProviderChoice(
                name=o.name, display_name=o.display_name, available=o.connector is not None,
                note=o.note, redirect=isinstance(o.connector, RedirectConnector),
                fields=tuple(ConnectField(f.name, f.label, f.kind, f.required, f.help,
                                          f.autocomplete)
                             for f in (o.connector.fields if o.connector is not None
                                       and not isinstance(o.connector, RedirectConnector)
                                       else ())))
            for o in self.connectors.offerings(client_id)
        ]

    def connect(self, provider_name: str, values: Mapping[str, str], flow_id: str) -> PendingLink:
        connector = self.connectors.get(provider_name)
        if connector is None or isinstance(connector, RedirectConnector):
            raise ConnectFailed("That calendar provider is not available.")
        missing = [f.label for f in connector.fields if f.required and not values.get(f.name)]
        if missing:
            raise ConnectFailed(f"Please fill in: {', '.join(missing)}.")
        try:
            verified = connector.verify({f.name: values.get(f.name, "") for f in connector.fields})
        except VerificationFailed as exc:
            raise ConnectFailed(str(exc)) from exc
        return self._park(connector.provider_name, connector.provider_service, verified,
                          flow_id)

    def upstream_authorization_url(self, provider_name: str, request: UpstreamRequest) -> str:
        connector = self._redirect(provider_name)
        try:
            return connector.authorization_url(request.client_id, expand(request.scope.split()),
                                               request.redirect_uri, request.state,
                                               request.code_verifier)
        except VerificationFailed as exc:
            raise ConnectFailed(str(exc)) from exc

    def upstream_connect(self, provider_name: str, request: UpstreamRequest,
                         code: str) -> PendingLink:
        connector = self._redirect(provider_name)
        try:
            verified = connector.complete(request.client_id, expand(request.scope.split()),
                                          request.redirect_uri, code, request.code_verifier)
        except ScopesWithheld as exc:
            raise UpstreamScopesMissing(str(exc), exc.missing) from exc
        except VerificationFailed as exc:
            raise ConnectFailed(str(exc)) from exc
        return self._park(connector.provider_name, connector.provider_service, verified,
                          request.flow_id)

    def upstream_refused(self, provider_name: str, params: Mapping[str, str]) -> str:
        connector = self.connectors.get(provider_name)
        if not isinstance(connector, RedirectConnector):
            return ""
        return connector.refused(params)

    def _redirect(self, provider_name: str) -> RedirectConnector:
        connector = self.connectors.get(provider_name)
        if not isinstance(connector, RedirectConnector):
            raise ConnectFailed("That calendar provider is not available.")
        return connector

    def _park(self, provider_name: str, provider_service: str, verified: VerifiedAccount,
              flow_id: str) -> PendingLink:
        path = self.accounts.park_credentials(flow_id, verified.credentials)
        return PendingLink(provider_name, provider_service, verified.profile_name,
                           verified.upstream_id, path, dict(verified.settings))

    def discard(self, pending: PendingLink) -> None:
        self.accounts.discard(pending.credential_path)

    def link(self, client_id: str, pending: PendingLink, link_key: str | None,
             scope: str) -> LinkedProfile:
        linked = self.accounts.link(client_id, PendingAccount(
            pending.provider_name, pending.provider_service, pending.profile_name,
            pending.upstream_id, pending.credential_path), link_key,
            sorted(expand(scope.split())))
        return LinkedProfile(linked.subject, linked.profile_id, linked.provider_name,
                             linked.provider_service, linked.profile_name)

    def application_calendar(self, client_id: str,
                             application_calendar_id: str) -> LinkedProfile:
        linked = self.application_calendars.provision(
            client_id, application_calendar_id, sorted(expand([APPLICATION_SCOPE])))
        return LinkedProfile(linked.subject, linked.profile_id, linked.provider_name,
                             linked.provider_service, linked.profile_name)

    def revoke_subject(self, subject: str, reason: str) -> None:
        self.accounts.revoke_subject(subject, reason)

    def revoke_client(self, client_id: str) -> None:
        self.accounts.revoke_client(client_id)
