"""The plug-in surface: what a provider package hands the gateway besides its
:class:`providers.protocol.CalendarProvider`.

A provider is one package under ``providers/`` and one :class:`providers.registry.ProviderEntry`.
The entry names, as ``"module:attribute"`` strings imported on first use, the pieces below that
the provider has: how an account is linked (a :class:`FormLinking`, or an
:class:`UpstreamOAuth` factory for providers whose users sign in at the upstream), a push
parser, a conferencing recogniser and a typed settings class. The gateway only ever asks the
entry; it never names a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Self

from .errors import ProviderError

if TYPE_CHECKING:
    from .registry import ProviderOptions

# -- linking with a form (CalDAV, iCloud, a feed URL) ---------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the consent screen's form for a provider."""

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    help: str = ""
    autocomplete: str = "off"


@dataclass(frozen=True, slots=True)
class FormLinking:
    """A provider linked from a form: its fields, how the answers become the credentials the
    provider opens the account with, and the provider's own words for an error type (ahead of
    the gateway's general table)."""

    fields: Sequence[FormField]
    credentials: Callable[[Mapping[str, str]], dict[str, str]]
    hints: Mapping[type[ProviderError], str] = field(default_factory=dict)
    # An error type that means "link this account with that other provider instead" (by its
    # registry name): the form offers a button to it next to the hint.
    elsewhere: Mapping[type[ProviderError], str] = field(default_factory=dict)


# -- linking through the upstream's own OAuth server (Google, Microsoft) ---------------------


@dataclass(frozen=True, slots=True)
class UpstreamApp:
    """The OAuth client registered at the upstream (the deployment's, or a client app's own,
    so the upstream's consent page shows its name). Kept in the secret store by the gateway."""

    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class UpstreamGrant:
    """What the upstream's token endpoint answered to the authorization code."""

    refresh_token: str | None  # None when the upstream gave no lasting access
    access_token: str
    granted_scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Everything an authorization URL carries. ``scopes`` are Calgate's (expanded) scopes;
    the provider maps them onto its own least-privilege ones."""

    redirect_uri: str
    scopes: frozenset[str]
    state: str
    code_verifier: str  # PKCE (RFC 7636): the provider sends its S256 challenge
    nonce: str = ""  # OpenID Connect providers bind the ID token to it


class UpstreamOAuth(Protocol):
    """The upstream-OAuth half of a redirect provider, implemented in its package and used by
    the gateway's one upstream connector. Blocking methods: the gateway runs them in threads.
    Failures are :mod:`providers.errors` exceptions."""

    @property
    def vendor(self) -> str:
        """Whose sign-in page the user sees (``Google``), for messages."""
        ...

    def authorization_url(self, app: UpstreamApp, request: AuthorizationRequest) -> str:
        """Where to send the user to grant access."""
        ...

    def exchange_code(self, app: UpstreamApp, code: str, request: AuthorizationRequest
                      ) -> UpstreamGrant:
        """Trade the authorization code for tokens."""
        ...

    def missing_scopes(self, scopes: frozenset[str], grant: UpstreamGrant) -> tuple[str, ...]:
        """What the user withheld of what Calgate's ``scopes`` need, described in the words
        of the upstream's consent page; empty when everything needed was granted."""
        ...

    def revoke(self, app: UpstreamApp, grant: UpstreamGrant) -> None:
        """Give a grant back (a token the upstream no longer knows counts as revoked)."""
        ...

    def credentials(self, grant: UpstreamGrant) -> dict[str, str]:
        """What to keep in the secret store for the profile (never the app's secret: the
        gateway merges ``client_id``/``client_secret`` in when the account is opened)."""
        ...

    def refusal(self, params: Mapping[str, str]) -> ProviderError:
        """What the upstream meant by redirecting back with an ``error`` (the redirect's
        query): :class:`providers.errors.AccessDeclined`, ``AdminApprovalRequired``,
        ``AccountNotAccepted`` or another provider error, for the page the user sees."""
        ...

    @property
    def hints(self) -> Mapping[type[ProviderError], str]:
        """The provider's own words for an error type (ahead of the gateway's table), such
        as the steps an administrator takes to approve the app at this upstream."""
        ...


# Called with the deployment's ProviderOptions (its settings_for gives the typed settings).
UpstreamOAuthFactory = Callable[["ProviderOptions"], UpstreamOAuth]


# -- push --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushRequest:
    """An upstream's POST to ``/webhooks/{provider}``: header names lower-cased, and the
    URL's query (a subscription handshake's token, the channel a subscription was told)."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushNotice:
    """One notification: the channel (as ``watch`` returned it), its token, and what
    happened: ``exists``/``not_exists`` (a change: sync now), ``sync`` (the channel opened),
    ``renew`` (the upstream ended the channel or wants it authorised again: replace it now),
    ``resync`` (the upstream lost changes: sync the calendar in full)."""

    channel_id: str
    token: str
    resource_id: str | None = None
    state: str = "exists"


@dataclass(frozen=True, slots=True)
class PushReceipt:
    """What a push parser read. ``reply`` is text the upstream wants echoed with 200 (a
    subscription handshake) instead of processing; no notices and no reply is a 404."""

    notices: tuple[PushNotice, ...] = ()
    reply: str | None = None


PushParser = Callable[[PushRequest], PushReceipt]


# -- conferencing --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conferencing:
    """A meeting link the provider recognises as its own (Cronofy's ``conferencing``)."""

    provider_name: str
    join_url: str


ConferencingRecogniser = Callable[[str], Conferencing | None]


# -- read extras -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadExtra:
    """A field a provider adds to its own events on ``GET /v1/events`` when the client sets a
    flag (Cronofy's ``google_event_ids=true`` adds ``google_event_id``). ``value`` names, as a
    ``"module:attribute"`` string imported on first use, a :data:`ReadExtraValue`."""

    flag: str  # the boolean query parameter that asks for it
    field: str  # the event's field
    value: str  # -> ReadExtraValue


# (resource id, instance id) of a mirrored event -> the field's value; None leaves it out.
ReadExtraValue = Callable[[str, str], str | None]


# -- settings --------------------------------------------------------------------------------


class ProviderSettings(Protocol):
    """A provider's typed settings: a frozen dataclass built from the ``CALGATE_<PROVIDER>_*``
    settings it declares (``values`` keyed without the prefix, e.g. ``url`` for
    ``CALGATE_GOOGLE_URL``); every field has a default, so ``cls()`` is the real upstream."""

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Self: ...
