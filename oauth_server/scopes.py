"""The scope catalogue (API.md section 2.6 and Calgate's decisions table).

Pure functions: parse a requested scope string, expand aggregates, describe a grant in
plain words for the consent screen, and check what a token may do.
"""

from __future__ import annotations

from collections.abc import Iterable

INDIVIDUAL: dict[str, str] = {
    "read_account": "See your name, email address and time zone",
    "list_calendars": "See the names of your calendars",
    "read_events": "See the events in your calendars, including their titles and details",
    "read_free_busy": "See when you are busy or free",
    "create_event": "Create events in your calendars and change the events it created",
    "delete_event": "Delete the events it created",
    "create_calendar": "Create new calendars",
    "change_participation_status": "Accept or decline invitations for you",
    # Calgate's extension (Cronofy lists rooms only to Enterprise Connect service accounts):
    # GET /v1/resources for an ordinary account, in no aggregate (see EXTENSIONS).
    "read_resources": "See the names and email addresses of your organisation's meeting "
                      "rooms",
}
# Individual scopes no aggregate carries: the upstream permission behind them needs an
# administrator, so an app asking for ``read_write`` must not make every user need one.
EXTENSIONS: frozenset[str] = frozenset({"read_resources"})

AGGREGATES: dict[str, frozenset[str]] = {
    "read_write": frozenset(INDIVIDUAL) - EXTENSIONS,
    "read_only": frozenset({"read_account", "list_calendars", "read_events", "read_free_busy"}),
    "write_only": frozenset({"create_event", "delete_event"}),
    "free_busy_write": frozenset({"read_free_busy", "create_event", "delete_event"}),
}

# A scope that implies others (API.md: read_events implies read_free_busy).
IMPLIES: dict[str, frozenset[str]] = {"read_events": frozenset({"read_free_busy"})}

KNOWN: frozenset[str] = frozenset(INDIVIDUAL) | frozenset(AGGREGATES)


class ScopeError(ValueError):
    """The scope string names something Calgate does not offer."""


def parse(scope: str | None) -> list[str]:
    """Split a scope string (space separated; ``+`` already decoded) keeping order, no repeats."""
    seen: list[str] = []
    for item in (scope or "").split():
        if item not in seen:
            seen.append(item)
    return seen


def validate(scope: str | None) -> list[str]:
    """The requested scopes, or :class:`ScopeError` for an empty or unknown one."""
    items = parse(scope)
    if not items:
        raise ScopeError("scope is required")
    unknown = [s for s in items if s not in KNOWN]
    if unknown:
        raise ScopeError(f"unknown scope: {' '.join(unknown)}")
    return items


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """Every individual scope a list of granted (possibly aggregate) scopes carries."""
    result: set[str] = set()
    for scope in scopes:
        result |= AGGREGATES.get(scope, frozenset({scope}))
    for scope in list(result):
        result |= IMPLIES.get(scope, frozenset())
    return frozenset(result & set(INDIVIDUAL))


def allows(granted: Iterable[str], needed: str) -> bool:
    """Does a grant of ``granted`` carry the individual scope ``needed``?"""
    return needed in expand(granted)


def within(requested: Iterable[str], allowed: Iterable[str]) -> bool:
    """Is every scope in ``requested`` covered by ``allowed`` (both may be aggregates)?"""
    return expand(requested) <= expand(allowed)


def describe(scopes: Iterable[str]) -> tuple[list[str], list[str]]:
    """(what the app may do, the promises that follow) in plain words for the consent screen."""
    carried = expand(scopes)
    may = [text for name, text in INDIVIDUAL.items() if name in carried]
    if "read_events" in carried:
        # read_free_busy is implied; saying it twice would read as two separate powers.
        may = [t for t in may if t != INDIVIDUAL["read_free_busy"]]
    return may, _promises(carried)


def _promises(carried: frozenset[str]) -> list[str]:
    promises: list[str] = []
    writes = carried & {"create_event", "delete_event"}
    if writes and "read_events" not in carried:
        promises.append("It can only see and change events it creates, never your other events.")
    if writes and "read_events" in carried:
        promises.append("It can only change or delete events it creates.")
    if "read_free_busy" in carried and "read_events" not in carried:
        promises.append("It sees only when you are busy, never what you are doing.")
    if not carried & {"read_events", "read_free_busy"}:
        promises.append("It cannot see your existing events.")
    if "read_resources" in carried:
        promises.append("It sees the rooms' names and addresses, never their bookings.")
    promises.append("You can disconnect at any time; your calendar data is then erased.")
    return promises
