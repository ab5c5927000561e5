"""Who may do what on a calendar: the caller's role in the calendar's ACL combined with
the OAuth scopes of the bearer token, as Google documents each scope."""

from __future__ import annotations

from .errors import ApiError, insufficient_scopes, not_found, writer_access
from .listing import Level
from .state import CalendarRecord, World

CAL = "https://www.googleapis.com/auth/calendar"
READ_ALL = frozenset({CAL, f"{CAL}.readonly", f"{CAL}.events", f"{CAL}.events.readonly"})
READ_OWNED = frozenset({f"{CAL}.events.owned", f"{CAL}.events.owned.readonly"})
WRITE_ALL = frozenset({CAL, f"{CAL}.events"})
WRITE_OWNED = f"{CAL}.events.owned"
APP_CREATED = f"{CAL}.app.created"
BUSY_ONLY = f"{CAL}.events.freebusy"
FREEBUSY_ANY = frozenset({CAL, f"{CAL}.readonly", BUSY_ONLY})
FREEBUSY_OWN = f"{CAL}.freebusy"


def calendar_for(world: World, user: str, calendar_id: str) -> CalendarRecord:
    found = world.calendar(user, calendar_id)
    if found is None:
        raise not_found()
    return found


def _app_made(calendar: CalendarRecord, client_id: str, scopes: frozenset[str]) -> bool:
    return APP_CREATED in scopes and calendar.created_by == client_id


def read_level(calendar: CalendarRecord, user: str, client_id: str,
               scopes: frozenset[str], api_method: str) -> Level:
    """"full" (event contents), "busy" (times only) or ApiError 403."""
    role = calendar.acl[user]
    if role in ("owner", "writer", "reader") and (
            scopes & READ_ALL or (role == "owner" and scopes & READ_OWNED)
            or _app_made(calendar, client_id, scopes)):
        return "full"
    if BUSY_ONLY in scopes or (role == "freeBusyReader" and scopes & (READ_ALL | READ_OWNED)):
        return "busy"
    raise insufficient_scopes(api_method)


def check_write(calendar: CalendarRecord, user: str, client_id: str,
                scopes: frozenset[str], api_method: str) -> None:
    role = calendar.acl[user]
    if role not in ("owner", "writer"):
        raise writer_access()
    if scopes & WRITE_ALL or (role == "owner" and WRITE_OWNED in scopes) \
            or _app_made(calendar, client_id, scopes):
        return
    raise insufficient_scopes(api_method)


def may_query_busy(calendar: CalendarRecord, user: str, scopes: frozenset[str]) -> bool:
    role = calendar.acl.get(user)
    if role is None:
        return False
    return bool(scopes & FREEBUSY_ANY) or (FREEBUSY_OWN in scopes and role == "owner")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)
