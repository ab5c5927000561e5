"""The provider registry (libcloud's lazy registry): one entry per provider, describing it
statically. The gateway asks the entry, never the name.

Everything a provider implements is named here as a ``"module:attribute"`` string and imported
on first use, so a provider's client library (exchangelib, say) loads only when an account of
that kind is opened. Adding a provider is a package under ``providers/`` plus one entry in
:data:`ENTRIES` (README.md, "Adding a provider").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from .model import GATED_WRITE_FIELDS, Capabilities
from .outbound import OutboundPolicy
from .plugin import (
    Conferencing,
    FormLinking,
    ProviderSettings,
    PushParser,
    ReadExtra,
    ReadExtraValue,
    UpstreamOAuth,
    UpstreamOAuthFactory,
)
from .protocol import CalendarProvider

S = TypeVar("S")
LinkKind = Literal["redirect", "form", "url", "none"]  # none: not offered on the consent screen
# webhook: the upstream POSTs to /webhooks/{name}; pull: Calgate reads the upstream's queue
PushKind = Literal["webhook", "pull", "none"]


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """Deployment-wide knobs every provider may read, plus each provider's typed settings."""

    timeout: float = 20.0
    # What user-chosen servers (CalDAV, ICS feeds, …) may be reached: the outbound guard's
    # deny list minus the operator's allowed networks (CALGATE_OUTBOUND_ALLOW_NETWORKS).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    user_agent: str = "Calgate/0.1"
    # provider name -> an instance of that provider's settings class (see build_settings)
    settings: Mapping[str, object] = field(default_factory=dict)

    def settings_for(self, name: str, cls: type[S]) -> S:
        """Provider ``name``'s settings; ``cls()`` (the real upstream) when none were set."""
        found = self.settings.get(name)
        return found if isinstance(found, cls) else cls()


Opener = Callable[[Mapping[str, str], ProviderOptions], CalendarProvider]


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A provider's static description. ``opener`` None: planned, shown on the consent screen
    as not yet available. The ``"module:attribute"`` fields are imported on first use."""

    name: str  # the profiles' provider_name, the /webhooks/{name} and /oauth/callback/{name}
    display_name: str
    link: LinkKind
    capabilities: Capabilities = field(default_factory=Capabilities)
    push: PushKind = "none"
    service: str = ""  # Cronofy's provider_service; the name when empty
    opener: str | None = None  # -> Opener
    linking: str | None = None  # -> FormLinking (form, url) or UpstreamOAuthFactory (redirect)
    settings: str | None = None  # -> a ProviderSettings class
    push_parser: str | None = None  # -> PushParser
    conferencing: str | None = None  # -> Callable[[str], Conferencing | None]
    integrated_conferencing: bool = False  # can add its own meeting to an event
    # Which of the gated upsert fields (providers.model.GATED_WRITE_FIELDS) it writes.
    write_fields: frozenset[str] = frozenset()
    # -> str: where the user removes the app's access at the upstream, for an upstream whose
    # grant Calgate cannot give back itself; the consent screen shows it once linked.
    access_note: str | None = None
    read_extras: tuple[ReadExtra, ...] = ()  # fields its events gain on reads, by flag
    loggers: tuple[str, ...] = ()  # its libraries' loggers, kept at warning (they log URLs)
    # Accounts owned by a client app and kept by Calgate, no upstream and no consent screen:
    # Cronofy's application calendars (POST /v1/application_calendars). At most one entry.
    app_owned: bool = False

    @property
    def implemented(self) -> bool:
        return self.opener is not None

    @property
    def provider_service(self) -> str:
        return self.service or self.name

    def open(self, credentials: Mapping[str, str], options: ProviderOptions
             ) -> CalendarProvider:
        if self.opener is None:
            raise UnknownProvider(self.name)
        function: Opener = _load(self.opener)
        return function(credentials, options)

    def form(self) -> FormLinking:
        if self.link not in ("form", "url") or self.linking is None:
            raise TypeError(f"{self.name} is not linked with a form")
        linking: FormLinking = _load(self.linking)
        return linking

    def upstream_oauth(self, options: ProviderOptions) -> UpstreamOAuth:
        if self.link != "redirect" or self.linking is None:
            raise TypeError(f"{self.name} is not linked through an upstream redirect")
        factory: UpstreamOAuthFactory = _load(self.linking)
        return factory(options)

    def parse_push(self) -> PushParser | None:
        return None if self.push_parser is None else _load(self.push_parser)

    def recognise_meeting(self, url: str) -> Conferencing | None:
        """The conferencing a meeting URL is, if this provider made it."""
        if self.conferencing is None:
            return None
        recognise: Callable[[str], Conferencing | None] = _load(self.conferencing)
        return recognise(url)

    def remove_access_note(self) -> str:
        """Where the user removes this app's access at the upstream ("": revoking in Calgate
        gives the grant back, nothing is left for the user to do)."""
        if self.access_note is None:
            return ""
        note: str = _load(self.access_note)
        return note
    def extra_fields(self, flags: Iterable[str], resource_id: str, instance_id: str
                     ) -> dict[str, str]:
        """The read extras asked for by ``flags`` that this provider's event has."""
        wanted = frozenset(flags)
        fields: dict[str, str] = {}
        for extra in self.read_extras:
            if extra.flag in wanted:
                value: ReadExtraValue = _load(extra.value)
                found = value(resource_id, instance_id)
                if found is not None:
                    fields[extra.field] = found
        return fields

    def load_settings(self, values: Mapping[str, str]) -> object | None:
        if self.settings is None:
            return None
        cls: type[ProviderSettings] = _load(self.settings)
        return cls.from_values(values)


# Each provider class repeats its entry's capabilities; tests/unit/test_provider_registry.py
# checks that they agree.
_EDITABLE = Capabilities(writable=True, free_busy=True, incremental_sync=True,
                         create_calendar=True, participation_status=True)
_CALDAV = replace(_EDITABLE, recurring_writes=True)  # an RRULE on the VEVENT

_GRAPH = Capabilities(writable=True, free_busy=True, incremental_sync=True, native_push=True,
                      server_side_expansion=True, create_calendar=True,
                      participation_status=True, recurring_writes=True)

# Gated upsert fields per provider (rows of providers.model.GATED_WRITE_FIELDS). Google has
# no coordinates: they are kept in the event's private extended properties, so Calgate's
# reads give them back. Graph has no event URL and colours events only through the
# mailbox's named categories, so neither is offered; its showAs carries every busy state.
_GOOGLE_WRITES = frozenset({"color", "url", "location.geo"})
_GRAPH_WRITES = frozenset({"location.geo", "extended_transparency.tentative",
                           "extended_transparency.out_of_office",
                           "extended_transparency.working_elsewhere"})
_CALDAV_WRITES = frozenset({"color", "url", "location.geo"})  # COLOR (RFC 7986), URL, GEO

ENTRIES: tuple[ProviderEntry, ...] = (
    ProviderEntry(
        "google", "Google Calendar", "redirect",
        Capabilities(writable=True, free_busy=True, incremental_sync=True, native_push=True,
                     server_side_expansion=True, create_calendar=True,
                     participation_status=True, recurring_writes=True, resources=True),
        push="webhook", opener="providers.google.provider:open_account",
        linking="providers.google.linking:GoogleOAuth",
        settings="providers.google.config:GoogleSettings",
        push_parser="providers.google.push:parse",
        conferencing="providers.google.push:recognise_meeting",
        integrated_conferencing=True, write_fields=_GOOGLE_WRITES,
        read_extras=(ReadExtra("google_event_ids", "google_event_id",
                               "providers.google.extras:google_event_id"),),
        loggers=("googleapiclient", "google", "google_auth_httplib2")),
    # Rooms are places of a work or school tenant; personal accounts have none.
    ProviderEntry("office365", "Microsoft 365", "redirect", replace(_GRAPH, resources=True),
                  push="webhook",
                  opener="providers.microsoft.provider:open_account",
                  linking="providers.microsoft.linking:Office365OAuth",
                  settings="providers.microsoft.config:GraphSettings",
                  push_parser="providers.microsoft.push:parse",
                  conferencing="providers.microsoft.push:recognise_meeting",
                  integrated_conferencing=True, write_fields=_GRAPH_WRITES,
                  loggers=("msal",),
                  access_note="providers.microsoft.linking:REMOVE_WORK_ACCESS"),
    # Personal accounts; the same Entra app, settings (CALGATE_OFFICE365_*) and provider.
    ProviderEntry("live_connect", "Outlook.com", "redirect", _GRAPH, push="webhook",
                  service="outlook_com",
                  opener="providers.microsoft.provider:open_account",
                  linking="providers.microsoft.linking:LiveConnectOAuth",
                  push_parser="providers.microsoft.push:parse",
                  conferencing="providers.microsoft.push:recognise_meeting",
                  integrated_conferencing=True, write_fields=_GRAPH_WRITES,
                  loggers=("msal",),
                  access_note="providers.microsoft.linking:REMOVE_PERSONAL_ACCESS"),
    ProviderEntry("exchange", "Exchange (on-premises)", "form",
                  Capabilities(writable=True, free_busy=True, incremental_sync=True,
                               participation_status=True, native_push=True),
                  push="pull", opener="providers.exchange.provider:open_account",
                  linking="providers.exchange.linking:EXCHANGE",
                  settings="providers.exchange.config:ExchangeSettings",
                  loggers=("exchangelib", "requests_ntlm", "spnego"),
                  access_note="providers.exchange.linking:NOTHING_TO_REVOKE"),
    # A hybrid-configured Exchange Server whose mailboxes sign in at Microsoft (Entra modern
    # auth): the same provider with a bearer token; Cronofy's service name stays exchange.
    ProviderEntry("exchange_hybrid", "Exchange (Microsoft sign-in)", "redirect",
                  Capabilities(writable=True, free_busy=True, incremental_sync=True,
                               participation_status=True, native_push=True),
                  push="pull", service="exchange", opener="providers.exchange.hybrid:open_account",
                  linking="providers.exchange.hybrid:HybridOAuth",
                  loggers=("exchangelib", "msal"),
                  access_note="providers.exchange.hybrid:REMOVE_ACCESS"),
    ProviderEntry("apple", "iCloud", "form", _CALDAV, service="icloud",
                  opener="providers.caldav.provider:open_icloud_account",
                  linking="providers.caldav.linking:ICLOUD", write_fields=_CALDAV_WRITES,
                  loggers=("caldav",)),
    ProviderEntry("caldav", "CalDAV server", "form", _CALDAV,
                  opener="providers.caldav.provider:open_account",
                  linking="providers.caldav.linking:CALDAV", write_fields=_CALDAV_WRITES,
                  loggers=("caldav",)),
    ProviderEntry("ics", "Calendar feed (ICS)", "url", Capabilities(),
                  opener="providers.ics.provider:open_account",
                  linking="providers.ics.settings:LINKING",
                  settings="providers.ics.settings:IcsSettings",
                  loggers=("icalendar", "recurring_ical_events")),
    # Cronofy's application calendars: kept by Calgate, provisioned by the client app
    # (POST /v1/application_calendars), never offered on the consent screen.
    ProviderEntry("cronofy", "Application calendar", "none",
                  Capabilities(writable=True, incremental_sync=True, invitations=False),
                  opener="providers.application.provider:open_account", app_owned=True,
                  # The mirror is its store: it keeps all but a colour (reads have none).
                  write_fields=frozenset(GATED_WRITE_FIELDS) - {"color"}),
    ProviderEntry("memory", "In-memory (tests)", "none", _EDITABLE,
                  opener="providers.memory.provider:open_account",
                  write_fields=frozenset(GATED_WRITE_FIELDS)),
)
_BY_NAME = {entry.name: entry for entry in ENTRIES}


class UnknownProvider(KeyError):
    """No provider of that name is registered (or it is only planned)."""


def get_entry(name: str) -> ProviderEntry:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownProvider(name) from None


def find_entry(name: str) -> ProviderEntry | None:
    return _BY_NAME.get(name)


def entries() -> tuple[ProviderEntry, ...]:
    """Every entry, in the consent screen's display order."""
    return ENTRIES


def app_owned_entry() -> ProviderEntry:
    """The provider of application calendars (accounts a client app owns)."""
    return next(e for e in ENTRIES if e.app_owned)


def redirect_providers() -> tuple[str, ...]:
    """Providers linked through their own OAuth server: the ones with upstream apps."""
    return tuple(e.name for e in ENTRIES if e.link == "redirect")


def push_providers(*kinds: PushKind) -> tuple[str, ...]:
    """Implemented providers whose upstream pushes (to a webhook, or to a queue Calgate
    reads), or only those of the push ``kinds`` named."""
    return tuple(e.name for e in ENTRIES if e.push != "none" and e.implemented
                 and (not kinds or e.push in kinds))


def read_extras() -> tuple[ReadExtra, ...]:
    """Every read extra a provider declares, each flag once (the API accepts them all)."""
    found: dict[str, ReadExtra] = {}
    for entry in ENTRIES:
        for extra in entry.read_extras:
            found.setdefault(extra.flag, extra)
    return tuple(found.values())


def read_extra_flags() -> tuple[str, ...]:
    return tuple(extra.flag for extra in read_extras())


def build_settings(values: Callable[[str], Mapping[str, str]],
                   names: Iterable[str] | None = None) -> dict[str, object]:
    """Each provider's typed settings from ``values(name)`` (its ``CALGATE_<NAME>_*``)."""
    built: dict[str, object] = {}
    for entry in ENTRIES:
        if names is not None and entry.name not in names:
            continue
        loaded = entry.load_settings(values(entry.name))
        if loaded is not None:
            built[entry.name] = loaded
    return built


def opener(name: str) -> Opener:
    """The function that opens accounts of provider ``name`` (imported on first use)."""
    entry = get_entry(name)
    if entry.opener is None:
        raise UnknownProvider(name)
    function: Opener = _load(entry.opener)
    return function


def open_account(name: str, credentials: Mapping[str, str],
                 options: ProviderOptions | None = None) -> CalendarProvider:
    """Open an upstream account of provider ``name`` with its stored credentials."""
    return opener(name)(credentials, options or ProviderOptions())


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
