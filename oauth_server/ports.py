"""What the authorization server needs from its host (gateway), and nothing more.

oauth_server never imports gateway or providers. The host hands in an :class:`AccountHost`
that offers providers on the consent screen, verifies and links an upstream calendar
account, and removes everything of a subject when its authorization is revoked; and,
optionally, a :class:`ClientSecretKeeper` that keeps client secrets for signing webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ConnectField:
    """One input of a provider's connect form. ``name`` is a stable, documented form field."""

    name: str
    label: str
    kind: str = "text"  # text | password | url | email
    required: bool = True
    help: str = ""
    autocomplete: str = "off"


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """A calendar provider as offered on the consent screen."""

    name: str
    display_name: str
    available: bool
    fields: tuple[ConnectField, ...] = ()
    note: str = ""
    # Linked by sending the user to the provider's own OAuth server (an upstream redirect)
    # instead of a form.
    redirect: bool = False
    # Where the user removes the app's access at the provider, which keeps it whatever
    # Calgate does; shown once the provider has given access (empty: nothing to remove).
    remove_access: str = ""


@dataclass(frozen=True, slots=True)
class PendingLink:
    """An upstream account whose credentials were verified but not yet granted to an app.

    ``credential_path`` points at the secret store; nothing here is secret.
    """

    provider_name: str
    provider_service: str
    profile_name: str
    upstream_id: str
    credential_path: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider_name": self.provider_name,
            "provider_service": self.provider_service,
            "profile_name": self.profile_name,
            "upstream_id": self.upstream_id,
            "credential_path": self.credential_path,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingLink:
        return cls(
            provider_name=str(data["provider_name"]),
            provider_service=str(data["provider_service"]),
            profile_name=str(data["profile_name"]),
            upstream_id=str(data["upstream_id"]),
            credential_path=str(data["credential_path"]),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class LinkedProfile:
    """The profile an authorization linked: the token response's ``linking_profile``."""

    subject: str
    profile_id: str
    provider_name: str
    provider_service: str
    profile_name: str


@dataclass(frozen=True, slots=True)
class RelinkTarget:
    """A disconnected profile that a relink URL names: the flow reconnects exactly this one.

    ``scope`` is what the account was granted (what to ask the upstream for again);
    ``reference`` the host's handle on this relink, kept in the flow (never the URL's token).
    """

    client_id: str
    profile_id: str
    provider_name: str
    profile_name: str
    scope: str
    reference: str


class ConnectFailed(Exception):
    """The upstream account could not be verified; ``str(exc)`` is shown to the end user."""


class ConnectElsewhere(ConnectFailed):
    """The account is linked through another provider of the consent screen (``provider``,
    its name): the form offers to switch to it."""

    def __init__(self, message: str, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class RelinkRefused(ConnectFailed):
    """The user signed in to another upstream account than the profile's: nothing changed."""


class LinkTokenInvalid(Exception):
    """A ``link_token`` is unknown, expired, used, or another client app's."""


class UpstreamScopesMissing(ConnectFailed):
    """The user unticked permissions on the provider's consent screen that the app needs.

    ``missing`` names each in plain words, as the provider's screen labels it, so the user
    knows which box to tick when trying again.
    """

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One round trip to a provider's OAuth server during a consent flow."""

    flow_id: str
    client_id: str  # the Calgate client app the user is linking for
    scope: str  # the Calgate scopes the app asked for
    redirect_uri: str  # Calgate's callback for this provider
    state: str
    code_verifier: str  # PKCE (S256): the provider sees only its challenge


class AccountHost(Protocol):
    """The host's side of linking calendars and ending authorizations. Blocking calls."""

    def provider_choices(self, client_id: str) -> Sequence[ProviderChoice]:
        """Providers to offer to ``client_id``'s users, available or not, in display order;
        none that this deployment has not configured."""
        ...

    def connect(self, provider_name: str, values: Mapping[str, str], flow_id: str) -> PendingLink:
        """Verify the account by a real upstream connection and park its credentials.

        Raises :class:`ConnectFailed` with a message for the end user.
        """
        ...

    def upstream_authorization_url(self, provider_name: str, request: UpstreamRequest) -> str:
        """Where to send the user to grant access at the provider (redirect providers)."""
        ...

    def upstream_connect(self, provider_name: str, request: UpstreamRequest,
                         code: str) -> PendingLink:
        """Exchange the provider's code, check what was granted, verify the account with a
        real call, and park its credentials. Raises :class:`UpstreamScopesMissing` when the
        user withheld a needed permission, :class:`ConnectFailed` otherwise."""
        ...

    def upstream_refused(self, provider_name: str, params: Mapping[str, str]) -> str:
        """What to tell the user when the provider sent them back with an ``error`` instead
        of a code (``params``: the redirect's query): they cancelled, an administrator must
        approve the app first, or the account is not one the provider lets in here."""
        ...

    def discard(self, pending: PendingLink) -> None:
        """Forget a pending link (the user denied, or the flow expired): erase its credentials."""
        ...

    def link(self, client_id: str, pending: PendingLink, link_key: str | None,
             scope: str, link_token: str | None = None) -> LinkedProfile:
        """Attach the account to the subject of ``link_key`` (a new subject if None/unknown).

        ``scope`` is what the user granted: the host keeps only the data it allows.
        ``link_token`` (what :meth:`find_link_token` returned) names the subject instead,
        and is used up; raises :class:`LinkTokenInvalid` if it no longer can be.
        """
        ...

    def find_link_token(self, client_id: str, token: str) -> str | None:
        """A reference to a live ``link_token`` minted for ``client_id``'s account (to pass
        to :meth:`link`; never the token itself), or None."""
        ...

    def relink_target(self, token: str) -> RelinkTarget | None:
        """The disconnected profile a relink URL's token names, or None when the token is
        forged, expired, or the profile was reconnected (or erased) since."""
        ...

    def find_relink(self, reference: str) -> RelinkTarget | None:
        """The target of a relink flow by its ``reference``, while it can still be relinked."""
        ...

    def relink(self, target: RelinkTarget, pending: PendingLink) -> LinkedProfile:
        """Give ``target`` the new credentials of ``pending``, keeping its ids and mirror.

        Raises :class:`RelinkRefused` (and discards ``pending``) when ``pending`` is another
        upstream account than the profile's, :class:`ConnectFailed` when the profile can no
        longer be relinked (it was reconnected or erased meanwhile).
        """
        ...

    def application_calendar(self, client_id: str,
                             application_calendar_id: str) -> LinkedProfile:
        """The client app's own calendar of that id (Cronofy's application calendars), kept
        by the host: provisioned on the first call, the same subject on later ones."""
        ...

    def revoke_subject(self, subject: str, reason: str) -> None:
        """The authorization of ``subject`` ended: erase its profiles, credentials and data,
        and record why (``revoked`` by the app, ``refresh_token_reuse`` or ``code_reuse``
        when a stolen grant was detected)."""
        ...

    def revoke_client(self, client_id: str) -> None:
        """The client app was deleted: erase every subject it had."""
        ...


class ClientSecretKeeper(Protocol):
    """Where the host keeps client secrets in clear, to sign webhooks (API.md s9.2).

    The registry stores only keyed digests of client secrets, which cannot make an HMAC.
    When it creates a confidential client, rotates a secret or deletes a client it tells
    the keeper, inside the database transaction: if the keeper raises, nothing changes.
    Blocking calls.
    """

    def keep(self, client_id: str, secret: str, previous_until: datetime | None) -> None:
        """``secret`` is the client's current secret. The one it replaces stays valid until
        ``previous_until``; with None (a new client, or a rotation without overlap) it is
        no longer valid at all."""
        ...

    def forget(self, client_id: str) -> None:
        """The client was deleted: erase every secret kept for it (no error if none)."""
        ...
