"""Graph v1.0: ``/me``, calendars, events (a series' instances; accept, tentativelyAccept
and decline), calendarView and its delta, getSchedule and subscriptions, each checked
against the token's delegated scopes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import places, schedule
from .errors import GraphError, access_denied, invalid, not_found
from .events import Events
from .push import Subscription
from .render import calendar_json, event_json, expanded_ids, extended_filter, user_json
from .state import Calendar, User
from .timeutil import parse_query_time, prefer_tz

if TYPE_CHECKING:
    from .emulator import MicrosoftEmulator

READ = frozenset({"Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite",
                  "Calendars.Read.Shared", "Calendars.ReadWrite.Shared"})
FULL_READ = READ - {"Calendars.ReadBasic"}
WRITE = frozenset({"Calendars.ReadWrite", "Calendars.ReadWrite.Shared"})
PROFILE = frozenset({"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"})
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#"
_CAL = r"/me/(?:calendars/(?P<cal>[^/]+)|calendar)"


@dataclass
class Call:
    emu: MicrosoftEmulator
    user: User
    scopes: frozenset[str]
    client_id: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    params: dict[str, str]

    @property
    def events(self) -> Events:
        return Events(self.emu.world, self.emu.world.mailbox(self.user.email))

    @property
    def tz(self) -> str:
        return prefer_tz(self.headers)

    @property
    def basic(self) -> bool:
        return not self.scopes & FULL_READ

    def need(self, allowed: frozenset[str]) -> None:
        if not self.scopes & allowed:
            raise access_denied()

    def calendar(self) -> Calendar:
        box = self.emu.world.mailbox(self.user.email)
        cal_id = self.params.get("cal")
        if cal_id is None:
            return box.default()
        if cal_id not in box.calendars:
            raise not_found()
        return box.calendars[cal_id]

    def event(self, stored: Any) -> dict[str, Any]:
        return event_json(stored, self.tz, basic=self.basic, expand=expanded_ids(self.query))


Result = tuple[int, Any, str]  # status, body, kind (for the request log)


def _me(call: Call) -> Result:
    call.need(PROFILE)
    return 200, {"@odata.context": CONTEXT + "users/$entity", **user_json(call.user)}, "me"


def _calendars(call: Call) -> Result:
    call.need(READ)
    box = call.emu.world.mailbox(call.user.email)
    if call.method == "POST":
        call.need(WRITE)
        name = str((call.body or {}).get("name") or "")
        if not name:
            raise invalid("The calendar name is required.")
        if any(c.name == name for c in box.calendars.values()):
            raise GraphError(409, "ErrorFolderExists", "A folder with the specified name "
                             "already exists.")
        created = call.emu.world.add_calendar(box.user.email, name,
                                              color=str(call.body.get("color") or "auto"))
        return 201, {"@odata.context": CONTEXT + "users('me')/calendars/$entity",
                     **calendar_json(created, call.user)}, "calendars.create"
    return 200, {"@odata.context": CONTEXT + "users('me')/calendars",
                 "value": [calendar_json(c, call.user) for c in box.calendars.values()]}, \
        "calendars.list"


def _calendar(call: Call) -> Result:
    call.need(READ)
    return 200, {"@odata.context": CONTEXT + "users('me')/calendars/$entity",
                 **calendar_json(call.calendar(), call.user)}, "calendars.get"


def _events(call: Call) -> Result:
    calendar = call.calendar()
    if call.method == "POST":
        call.need(WRITE)
        if not calendar.can_edit:
            raise access_denied()
        stored, _ = call.events.create(calendar, call.body or {})
        return 201, {"@odata.context": CONTEXT + "users('me')/events/$entity",
                     **call.event(stored)}, "events.create"
    call.need(READ)
    wanted = extended_filter(call.query)
    rows = [s for s in calendar.events.values()
            if wanted is None or s.extended.get(wanted[0]) == wanted[1]]
    return 200, {"@odata.context": CONTEXT + "users('me')/events",
                 "value": [call.event(s) for s in rows]}, "events.list"


def _event(call: Call) -> Result:
    event_id = call.params["id"]
    if call.method == "GET":
        call.need(READ)
        return 200, {"@odata.context": CONTEXT + "users('me')/events/$entity",
                     **call.event(call.events.find(event_id)[1])}, "events.get"
    call.need(WRITE)
    calendar, stored = call.events.find(event_id)
    if not calendar.can_edit:
        raise access_denied()
    match = call.headers.get("if-match")
    if match and match not in ("*", f'W/"{stored.resource["changeKey"]}"',
                               str(stored.resource["changeKey"])):
        raise GraphError(412, "ErrorIrresolvableConflict", "The send or update operation "
                         "could not be performed because the change key passed in the request "
                         "does not match the current change key for the item.")
    if call.method == "DELETE":
        call.events.delete(event_id)
        return 204, None, "events.delete"
    updated = call.events.update(event_id, call.body or {})
    return 200, {"@odata.context": CONTEXT + "users('me')/events/$entity",
                 **call.event(updated)}, "events.update"


def _view(call: Call) -> Result:
    call.need(READ)
    lo, hi = _time_window(call)
    rows = call.events.window(call.calendar(), lo, hi)
    return 200, {"@odata.context": CONTEXT + "Collection(event)",
                 "value": [call.event(s) for s in rows]}, "calendarView"


def _time_window(call: Call) -> tuple[datetime, datetime]:
    if "startDateTime" not in call.query or "endDateTime" not in call.query:
        raise GraphError(400, "ErrorInvalidParameter", "This request requires a time window "
                         "specified by the query string parameters StartDateTime and "
                         "EndDateTime.")
    return (parse_query_time(call.query["startDateTime"]),
            parse_query_time(call.query["endDateTime"]))


def _instances(call: Call) -> Result:
    """``GET /me/events/{id}/instances?startDateTime&endDateTime``: a series master's
    occurrences and exceptions in the window (cancelled ones left out).
    https://learn.microsoft.com/graph/api/event-list-instances"""
    call.need(READ)
    lo, hi = _time_window(call)
    master = call.events.find(call.params["id"])[1]
    rows = call.events.instances(master, lo, hi)
    context = f"users('{call.user.email}')/events('{master.id}')/instances"
    return 200, {"@odata.context": CONTEXT + context,
                 "value": [call.event(s) for s in rows]}, "events.instances"


# The event actions that answer an invitation, and the responseStatus each leaves.
# https://learn.microsoft.com/graph/api/event-accept (-tentativelyaccept, -decline)
ANSWERS = {"accept": "accepted", "tentativelyAccept": "tentativelyAccepted",
           "decline": "declined"}
# Action parameters are matched without regard to case: msgraph-sdk sends ``Comment`` and
# ``SendResponse``, the documentation's examples ``comment`` and ``sendResponse``.
ANSWER_FIELDS = {"accept": {"comment", "sendresponse"},
                 "tentativelyAccept": {"comment", "sendresponse", "proposednewtime"},
                 "decline": {"comment", "sendresponse", "proposednewtime"}}


def _answer(call: Call) -> Result:
    """``POST /me/events/{id}/accept`` (``tentativelyAccept``, ``decline``) with an optional
    ``{comment, sendResponse}``: 202 Accepted, no body."""
    call.need(WRITE)
    action = call.params["action"]
    given = call.body if call.body is not None else {}
    if not isinstance(given, dict):
        raise invalid("The request body must be a JSON object.")
    unknown = sorted(k for k in given if k.lower() not in ANSWER_FIELDS[action])
    if unknown:
        raise GraphError(400, "RequestBodyRead", f"The property '{unknown[0]}' does not exist "
                         f"on type 'microsoft.graph.{action}'.")
    body = {k.lower(): v for k, v in given.items()}
    if not isinstance(body.get("sendresponse", True), bool) or \
            not isinstance(body.get("comment", ""), str):
        raise GraphError(400, "RequestBodyRead", "Cannot convert the literal to the expected "
                         "type.")
    call.events.answer(call.params["id"], ANSWERS[action])
    return 202, None, f"events.{action}"


def _delta(call: Call) -> Result:
    call.need(READ)
    calendar = call.calendar()
    link = f"{call.emu.graph_url}/me/calendars/{calendar.id}/calendarView/delta"
    page = call.emu.delta.page(call.events, calendar, call.query, call.headers, call.tz,
                               call.basic, link)
    return 200, page, "delta"


def _get_schedule(call: Call) -> Result:
    call.need(READ)
    return 200, schedule.get_schedule(call.emu.world, call.user, call.body or {}, call.tz), \
        "getSchedule"


def _subscriptions(call: Call) -> Result:
    call.need(READ)
    push = call.emu.push
    if call.method == "GET":
        return 200, {"@odata.context": CONTEXT + "subscriptions", "value": [
            s.json() for s in push.subs.values() if s.user == call.user.email]}, \
            "subscriptions.list"
    body = call.body or {}
    calendar_id, expires = push.check(body)
    urls = [body["notificationUrl"]] + ([body["lifecycleNotificationUrl"]]
                                        if body.get("lifecycleNotificationUrl") else [])
    with call.emu.world.unlocked():
        for url in urls:
            push.validate(url)
    sub = Subscription(str(uuid.uuid4()), call.user.email, call.user.tenant, call.client_id,
                       str(body["resource"]), calendar_id,
                       frozenset(str(body.get("changeType", "")).split(",")),
                       body["notificationUrl"], body.get("lifecycleNotificationUrl"),
                       body.get("clientState"), expires)
    push.add(sub)
    return 201, sub.json(), "subscriptions.create"


def _subscription(call: Call) -> Result:
    sub = call.emu.push.subs.get(call.params["id"])
    if sub is None or sub.user != call.user.email:
        raise GraphError(404, "ResourceNotFound", "The object was not found.")
    if call.method == "DELETE":
        del call.emu.push.subs[sub.id]
        return 204, None, "subscriptions.delete"
    if call.method == "PATCH":
        sub.expires = call.emu.push.expiry((call.body or {}).get("expirationDateTime"))
        return 200, sub.json(), "subscriptions.renew"
    return 200, sub.json(), "subscriptions.get"


def _rooms(call: Call) -> Result:
    link = f"{call.emu.graph_url}/places/microsoft.graph.room"
    return 200, places.rooms_page(call.emu.places, call.user.tenant, call.user.personal,
                                  call.scopes, call.query, link), "places.rooms"


Handler = Callable[[Call], Result]
ROUTES: list[tuple[re.Pattern[str], frozenset[str], Handler]] = [
    (re.compile(p + "$"), frozenset(m.split()), h) for p, m, h in [
        ("/me", "GET", _me),
        ("/me/calendars", "GET POST", _calendars),
        (_CAL, "GET", _calendar),
        (_CAL + "/events", "GET POST", _events),
        ("/me/events", "POST", _events),
        (r"/me/(?:calendars/[^/]+/)?events/(?P<id>[^/]+)", "GET PATCH DELETE", _event),
        (r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<id>[^/]+)/instances", "GET",
         _instances),
        (r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<id>[^/]+)/"
         r"(?P<action>accept|tentativelyAccept|decline)", "POST", _answer),
        (_CAL + "/calendarView", "GET", _view),
        ("/me/calendarView", "GET", _view),
        (_CAL + "/calendarView/delta", "GET", _delta),
        ("/me/calendarView/delta", "GET", _delta),
        ("/me/calendar/getSchedule", "POST", _get_schedule),
        ("/subscriptions", "GET POST", _subscriptions),
        ("/subscriptions/(?P<id>[^/]+)", "GET PATCH DELETE", _subscription),
        ("/places/microsoft.graph.room", "GET", _rooms)]]


def route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    for pattern, methods, handler in ROUTES:
        found = pattern.match(path)
        if found is not None:
            if method not in methods:
                raise GraphError(405, "Request_BadRequest", "Unsupported HTTP method.")
            return handler, {k: v for k, v in found.groupdict().items() if v is not None}
    raise GraphError(400, "BadRequest", f"Resource not found for the segment "
                                        f"'{path.rsplit('/', 1)[-1]}'.")
