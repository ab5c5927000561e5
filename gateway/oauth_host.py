"""gateway's side of oauth_server's ports: providers on the consent screen, linking, erasing.

Part of the composition root: the only gateway module besides ``app`` and the CLI that
imports oauth_server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from oauth_server.endpoints import APPLICATION_SCOPE
from oauth_server.ports import (
    ConnectElsewhere,
    ConnectFailed,
    ConnectField,
    LinkedProfile,
    LinkTokenInvalid,
    PendingLink,
    ProviderChoice,
    RelinkRefused,
    RelinkTarget,
    UpstreamRequest,
    UpstreamScopesMissing,
)
from oauth_server.scopes import expand
from providers.model import Calendar

from .services.accounts import (
    AccountService,
    Linked,
    LinkTokenUnusable,
    PendingAccount,
    RelinkGone,
    RelinkMismatch,
)
from .services.application_calendars import ApplicationCalendars
from .services.linking import (
    ConnectorRegistry,
    LinkElsewhere,
    RedirectConnector,
    ScopesWithheld,
    VerificationFailed,
    VerifiedAccount,
)
from .services.relink import RelinkLinks

ACCOUNT = "account"  # PendingLink.extra: what the provider said of the account


class GatewayAccountHost:
    """Implements :class:`oauth_server.ports.AccountHost` over gateway's services.

    A relink target's ``reference`` names the profile and the disconnection the URL answered
    (``pro_…:<unix seconds>``), so the relink at the end of the flow checks that the profile
    is still that disconnected one.
    """

    def __init__(self, accounts: AccountService, connectors: ConnectorRegistry,
                 application_calendars: ApplicationCalendars,
                 relinks: RelinkLinks | None = None) -> None:
        self.accounts = accounts
        self.connectors = connectors
        self.application_calendars = application_calendars
        self.relinks = relinks

    def provider_choices(self, client_id: str) -> Sequence[ProviderChoice]:
        return [
            ProviderChoice(
                name=o.name, display_name=o.display_name, available=o.connector is not None,
                note=o.note, redirect=isinstance(o.connector, RedirectConnector),
                remove_access=o.remove_access,
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
        except LinkElsewhere as exc:
            raise ConnectElsewhere(str(exc), exc.provider) from exc
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
        return PendingLink(provider_name, verified.service or provider_service,
                           verified.profile_name, verified.upstream_id, path,
                           dict(verified.settings) | {ACCOUNT: account_details(verified)})

    def discard(self, pending: PendingLink) -> None:
        self.accounts.discard(pending.credential_path)

    def link(self, client_id: str, pending: PendingLink, link_key: str | None,
             scope: str, link_token: str | None = None) -> LinkedProfile:
        try:
            linked = self.accounts.link(client_id, pending_account(pending), link_key,
                                        sorted(expand(scope.split())), link_token)
        except LinkTokenUnusable:
            raise LinkTokenInvalid() from None
        return _linked(linked)

    def find_link_token(self, client_id: str, token: str) -> str | None:
        return self.accounts.find_link_token(client_id, token)

    def relink_target(self, token: str) -> RelinkTarget | None:
        claim = self.relinks.read(token) if self.relinks is not None else None
        return None if claim is None else self._target(claim.profile_id, claim.disconnected)

    def find_relink(self, reference: str) -> RelinkTarget | None:
        profile_id, _, disconnected = reference.partition(":")
        return self._target(profile_id, int(disconnected)) if disconnected.isdigit() else None

    def _target(self, profile_id: str, disconnected: int) -> RelinkTarget | None:
        row = self.accounts.find_relink_target(profile_id, disconnected)
        if row is None:
            return None
        return RelinkTarget(row["client_id"], profile_id, row["provider_name"],
                            row["profile_name"], row["scope"], f"{profile_id}:{disconnected}")

    def relink(self, target: RelinkTarget, pending: PendingLink) -> LinkedProfile:
        _, _, disconnected = target.reference.partition(":")
        try:
            linked = self.accounts.relink(target.profile_id, int(disconnected or 0),
                                          pending_account(pending))
        except RelinkMismatch:
            self.discard(pending)
            raise RelinkRefused(
                f"You signed in as {pending.profile_name}, but this link reconnects "
                f"{target.profile_name}. Nothing was changed. Sign in with "
                f"{target.profile_name} to reconnect it.") from None
        except RelinkGone:
            self.discard(pending)
            raise ConnectFailed("This calendar was already reconnected, or removed, since "
                                "this link was made. Nothing was changed.") from None
        return _linked(linked)

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


def account_details(verified: VerifiedAccount) -> dict[str, Any]:
    """The account's name, zone and calendar list, as JSON for the flow (nothing secret)."""
    return {"name": verified.name, "tzid": verified.tzid,
            "calendars": None if verified.calendars is None
            else [dataclasses.asdict(c) for c in verified.calendars]}


def pending_account(pending: PendingLink) -> PendingAccount:
    details = pending.extra.get(ACCOUNT) or {}
    listed = details.get("calendars")
    return PendingAccount(
        pending.provider_name, pending.provider_service, pending.profile_name,
        pending.upstream_id, pending.credential_path, name=details.get("name"),
        tzid=details.get("tzid"),
        calendars=None if listed is None else tuple(Calendar(**c) for c in listed))


def _linked(linked: Linked) -> LinkedProfile:
    return LinkedProfile(linked.subject, linked.profile_id, linked.provider_name,
                         linked.provider_service, linked.profile_name)
