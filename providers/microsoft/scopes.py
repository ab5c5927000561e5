"""The one table from Calgate's scopes to Microsoft Graph's delegated permissions.

Least privilege: each Calgate scope maps to the narrowest Graph permission that allows the
Graph methods the provider calls for it, per the permissions table on each method's page
and the permissions reference (https://learn.microsoft.com/graph/permissions-reference).
The three Calendars permissions nest: ReadWrite covers Read, which covers ReadBasic.
``Calendars.ReadBasic`` reads events "except for properties such as body, attachments,
and extensions", so a free/busy-only app never gets event text, and no row asks for mail.
``other_calendars`` widens the event permissions to calendars other users share with the
account (the ``.Shared`` permissions, work or school accounts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GRAPH_RESOURCE = "https://graph.microsoft.com/"
READ_BASIC = "Calendars.ReadBasic"
READ = "Calendars.Read"
READ_WRITE = "Calendars.ReadWrite"
READ_SHARED = "Calendars.Read.Shared"
READ_WRITE_SHARED = "Calendars.ReadWrite.Shared"
# The tenant's rooms (List places): delegated, work or school accounts only, and it needs an
# administrator's consent, so it is asked for only with Calgate's read_resources.
# https://learn.microsoft.com/graph/api/place-list
PLACE_READ_ALL = "Place.Read.All"

# Always in the request; msal adds them itself and refuses them as input (its "reserved"
# scopes), so they are listed here to be shown and checked, not passed to msal.
# - offline_access: the refresh token that lets Calgate sync while the user is away.
#   https://learn.microsoft.com/entra/identity-platform/scopes-oidc#offline_access
# - openid: the ID token, whose ``oid`` and ``tid`` name the account stably (the profile's
#   upstream id, across renames and email changes) without User.Read or a /me call.
# - profile: ``preferred_username`` and ``name`` in that ID token, the profile's name.
#   https://learn.microsoft.com/entra/identity-platform/scopes-oidc#openid
ALWAYS: tuple[str, ...] = ("offline_access", "openid", "profile")


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One row: a Calgate scope, the Graph permission for the account's own calendars and
    for shared ones too, the Graph methods it must allow, and why."""

    calgate_scope: str
    owned: str
    any_calendar: str
    methods: tuple[str, ...]
    why: str


SCOPE_TABLE: tuple[ScopeRule, ...] = (
    # GET /me/calendars (owner of the default calendar: the mailbox address) is
    # Calendars.ReadBasic: https://learn.microsoft.com/graph/api/user-list-calendars
    ScopeRule("read_account", READ_BASIC, READ_BASIC, ("user-list-calendars",),
              "who the account is comes from the ID token; the mailbox from the calendar"),
    ScopeRule("list_calendars", READ_BASIC, READ_BASIC, ("user-list-calendars",),
              "names, colours, canEdit and owner of the calendars"),
    # getSchedule's least privileged delegated permission is Calendars.ReadBasic (work or
    # school only); calendarView and its delta accept it too, and so do subscriptions on
    # events. https://learn.microsoft.com/graph/api/calendar-getschedule,
    # https://learn.microsoft.com/graph/api/event-delta
    ScopeRule("read_free_busy", READ_BASIC, READ_BASIC,
              ("calendar-getschedule", "event-delta", "subscription-post-subscriptions"),
              "busy times; never bodies. ReadBasic still returns subjects and locations, so "
              "a free/busy-only profile's sync drops them before the mirror"),
    # Event bodies need Calendars.Read (ReadBasic leaves the body out).
    # https://learn.microsoft.com/graph/api/event-delta
    ScopeRule("read_events", READ, READ_SHARED,
              ("event-delta", "event-get", "subscription-post-subscriptions"),
              "event contents, read only"),
    # POST/PATCH events and extended properties need Calendars.ReadWrite.
    # https://learn.microsoft.com/graph/api/user-post-events, .../event-update,
    # .../singlevaluelegacyextendedproperty-post-singlevalueextendedproperties
    ScopeRule("create_event", READ_WRITE, READ_WRITE_SHARED,
              ("user-post-events", "event-update", "event-list"),
              "write the app's own events; a $filter on the extended property finds one"),
    # https://learn.microsoft.com/graph/api/event-delete
    ScopeRule("delete_event", READ_WRITE, READ_WRITE_SHARED, ("event-delete",),
              "delete the app's own events"),
    # https://learn.microsoft.com/graph/api/user-post-calendars
    ScopeRule("create_calendar", READ_WRITE, READ_WRITE, ("user-post-calendars",),
              "make calendars in the account"),
    # https://learn.microsoft.com/graph/api/event-accept (and tentativelyaccept, decline)
    ScopeRule("change_participation_status", READ_WRITE, READ_WRITE_SHARED,
              ("event-accept", "event-tentativelyaccept", "event-decline"),
              "answer invitations in the user's calendars"),
    # https://learn.microsoft.com/graph/api/place-list (least privileged: Place.Read.All)
    ScopeRule("read_resources", PLACE_READ_ALL, PLACE_READ_ALL, ("place-list",),
              "the tenant's rooms (names and addresses) for GET /v1/resources"),
)

# Permission -> the narrower ones it makes unnecessary.
COVERS: dict[str, frozenset[str]] = {
    READ_WRITE_SHARED: frozenset({READ_SHARED, READ_WRITE, READ, READ_BASIC}),
    READ_SHARED: frozenset({READ, READ_BASIC}),
    READ_WRITE: frozenset({READ, READ_BASIC}),
    READ: frozenset({READ_BASIC}),
}

# Plain words for each permission (the consent page's wording, permissions reference).
DESCRIPTIONS: dict[str, str] = {
    READ_BASIC: "Read basic details of your calendars (not event bodies)",
    READ: "Read your calendars",
    READ_WRITE: "Have full access to your calendars",
    READ_SHARED: "Read calendars you can access, including shared ones",
    READ_WRITE_SHARED: "Read and write calendars you can access, including shared ones",
    PLACE_READ_ALL: "Read all company places",
    "offline_access": "Maintain access to data you have given it access to",
    "openid": "Sign you in",
    "profile": "View your basic profile",
}


def describe_scope(scope: str) -> str:
    return DESCRIPTIONS.get(short(scope), scope)


def short(scope: str) -> str:
    """A Graph permission without the resource prefix Microsoft may answer with."""
    return scope[len(GRAPH_RESOURCE):] if scope.lower().startswith(GRAPH_RESOURCE) else scope


def graph_scopes(calgate_scopes: Iterable[str], other_calendars: bool = False
                 ) -> tuple[str, ...]:
    """The Graph permissions to ask msal for (without :data:`ALWAYS`, which msal adds),
    none another one covers; sorted. ValueError for a scope the table does not know."""
    rules = {rule.calgate_scope: rule for rule in SCOPE_TABLE}
    wanted = {READ_BASIC}  # every sync lists the calendars first
    for scope in calgate_scopes:
        rule = rules.get(scope)
        if rule is None:
            raise ValueError(f"no Microsoft Graph permission for Calgate scope {scope!r}")
        wanted.add(rule.any_calendar if other_calendars else rule.owned)
    covered = set().union(*(COVERS.get(s, frozenset()) for s in wanted))
    return tuple(sorted(wanted - covered))


def requested_scopes(calgate_scopes: Iterable[str], other_calendars: bool = False
                     ) -> tuple[str, ...]:
    """Everything the consent page will list: the Graph permissions and :data:`ALWAYS`."""
    return graph_scopes(calgate_scopes, other_calendars) + ALWAYS


def missing_scopes(needed: Iterable[str], granted: Iterable[str]) -> tuple[str, ...]:
    """The ``needed`` Graph permissions the token does not carry (a broader one counts;
    names compare without the resource prefix and case, as Microsoft may spell either)."""
    have = {short(s).lower() for s in granted}
    for scope in list(have):
        have |= {c.lower() for c in COVERS.get(_canonical(scope), frozenset())}
    return tuple(sorted(s for s in needed if short(s).lower() not in have))


def _canonical(lowered: str) -> str:
    for name in COVERS:
        if name.lower() == lowered:
            return name
    return lowered
