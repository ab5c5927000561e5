"""Handlers of the Calendar v3 methods the emulator implements, one function per method,
each called with a :class:`Call` whose query and body the discovery document already
validated and whose token already carries one of the method's scopes."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from . import access, listing
from .discovery import parse_rfc3339
from .errors import ApiError, full_sync_required, gone, invalid, not_found
from .events import Events, times
from .push import DEFAULT_TTL, MAX_TTL, Channel, Push
from .state import CalendarRecord, ListEntry, World
from .timeutil import as_utc, stamp

Answer = tuple[int, dict[str, Any] | None]
# freeBusy refuses a span over 90 days ("The requested time range is too long.", reason
# timeRangeTooLong), as seen by https://github.com/calcom/cal.diy/pull/11962.
FREEBUSY_MAX_DAYS = 90
FREEBUSY_MAX_CALENDARS = 50
GROUP_MAX = 100


@dataclass
class Call:
    world: World
    push: Push
    user: str
    client_id: str
    scopes: frozenset[str]
    api_method: str  # "events.list"
    path: dict[str, str]
    params: dict[str, Any]
    body: Any
    headers: dict[str, str]
    base_url: str
    updates: list[dict[str, Any]] = field(default_factory=list)  # sendUpdates mail log

    def calendar(self) -> CalendarRecord:
        return access.calendar_for(self.world, self.user, self.path["calendarId"])

    def level(self, calendar: CalendarRecord) -> listing.Level:
        return access.read_level(calendar, self.user, self.client_id, self.scopes,
                                 self.api_method)

    def writable(self) -> tuple[CalendarRecord, Events]:
        calendar = self.calendar()
        access.check_write(calendar, self.user, self.client_id, self.scopes, self.api_method)
        return calendar, Events(calendar, self.world.on_change)


# -- calendar list and calendars ----------------------------------------------------------

def entry(world: World, user: str, calendar: CalendarRecord) -> dict[str, Any]:
    mine = world.entries[user].get(calendar.id) or ListEntry()
    role = calendar.acl[user]
    out: dict[str, Any] = {
        "kind": "calendar#calendarListEntry", "etag": f'"{calendar.seq}"', "id": calendar.id,
        "summary": calendar.summary, "timeZone": calendar.tz, "colorId": mine.color_id,
        "backgroundColor": mine.background, "foregroundColor": mine.foreground,
        "selected": True, "accessRole": role,
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}
    if calendar.description:
        out["description"] = calendar.description
    if role == "owner":
        out["defaultReminders"] = [{"method": "popup", "minutes": 10}]
    if calendar.id == user:
        out["primary"] = True
    if mine.summary_override:
        out["summaryOverride"] = mine.summary_override
    if mine.hidden:
        out["hidden"] = True
    return out


ROLES = ("freeBusyReader", "reader", "writer", "owner")


def calendar_list_list(call: Call) -> Answer:
    minimum = ROLES.index(call.params.get("minAccessRole", "freeBusyReader"))
    items = []
    for calendar_id, mine in call.world.entries[call.user].items():
        calendar = call.world.calendars[calendar_id]
        if call.user not in calendar.acl or ROLES.index(calendar.acl[call.user]) < minimum:
            continue
        if (calendar.deleted and not call.params.get("showDeleted")) or (
                mine.hidden and not call.params.get("showHidden")):
            continue
        items.append(entry(call.world, call.user, calendar))
    key = "calendarList:" + call.user
    if call.params.get("pageToken"):
        page = call.world.next_page(call.params["pageToken"], key)
        if page is None:
            raise invalid("Invalid page token.")
    else:
        size = min(call.params.get("maxResults", 100), 250)
        page = call.world.page(key, items, size, {"nextSyncToken": "CL" + str(time.time_ns())})
    return 200, {"kind": "calendar#calendarList", "etag": '"list"', **page}


def calendar_list_get(call: Call) -> Answer:
    calendar = call.calendar()
    return 200, entry(call.world, call.user, calendar)


def calendar_list_patch(call: Call) -> Answer:
    calendar = call.calendar()
    if call.api_method == "calendarList.patch" and calendar.created_by != call.client_id \
            and not call.scopes & {access.CAL, f"{access.CAL}.calendarlist"}:
        raise access.forbidden("Only calendars this app created may be changed with "
                               "calendar.app.created.")
    mine = call.world.entries[call.user].setdefault(calendar.id, ListEntry())
    body = call.body
    if ("backgroundColor" in body or "foregroundColor" in body) and not call.params.get(
            "colorRgbFormat"):
        raise invalid("Setting colors in RGB format requires colorRgbFormat=true.")
    mine.background = body.get("backgroundColor", mine.background)
    mine.foreground = body.get("foregroundColor", mine.foreground)
    mine.hidden = bool(body.get("hidden", mine.hidden))
    mine.summary_override = body.get("summaryOverride", mine.summary_override)
    calendar.bump()
    return 200, entry(call.world, call.user, calendar)


def calendar_resource(calendar: CalendarRecord) -> dict[str, Any]:
    return {"kind": "calendar#calendar", "etag": f'"{calendar.seq}"', "id": calendar.id,
            "summary": calendar.summary, "description": calendar.description,
            "timeZone": calendar.tz,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}


def calendars_insert(call: Call) -> Answer:
    summary = call.body.get("summary")
    if not summary:
        raise invalid("Missing title.", reason="required")
    tz = call.body.get("timeZone") or call.world.users[call.user].tz
    calendar = call.world.add_calendar(call.user, summary, tz, created_by=call.client_id,
                                       description=call.body.get("description") or "")
    return 200, calendar_resource(calendar)


def calendars_get(call: Call) -> Answer:
    return 200, calendar_resource(call.calendar())


# -- events -------------------------------------------------------------------------------

def _listing_answer(call: Call, calendar: CalendarRecord, level: listing.Level,
                    page: dict[str, Any]) -> Answer:
    return 200, {"kind": "calendar#events", "etag": f'"{calendar.seq}"',
                 "summary": calendar.summary, "description": calendar.description,
                 "updated": stamp(calendar.updated), "timeZone": calendar.tz,
                 "accessRole": calendar.acl[call.user], "defaultReminders": [], **page}


SYNC_FORBIDS = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
                "timeMin", "timeMax", "updatedMin")


def events_list(call: Call) -> Answer:
    calendar = call.calendar()
    level = call.level(calendar)
    p = call.params
    if p.get("pageToken"):
        page = call.world.next_page(p["pageToken"], calendar.id)
        if page is None:
            raise invalid("Invalid page token.")
        return _listing_answer(call, calendar, level, page)
    events = Events(calendar, call.world.on_change)
    if p.get("syncToken"):
        bad = [name for name in SYNC_FORBIDS if name in p]
        if bad:
            raise invalid(f"Sync token cannot be used with {', '.join(bad)}.")
        if p.get("showDeleted") is False:
            raise invalid("showDeleted cannot be false with a sync token.")
        state = call.world.sync_state(p["syncToken"], calendar)
        if state is None:
            raise full_sync_required()
        found = listing.incremental(events, state.seq, p.get("singleEvents", False))
    else:
        if p.get("orderBy") == "startTime" and not p.get("singleEvents"):
            raise invalid("The requested ordering is not available for the particular query.")
        found = listing.full(events, p)
    items = [listing.render(e, calendar.id, level, tombstone=True) for e in found]
    size = min(p.get("maxResults", 250), 2500)
    page = call.world.page(calendar.id, items, size,
                           {"nextSyncToken": call.world.issue_sync_token(calendar)})
    return _listing_answer(call, calendar, level, page)


def events_instances(call: Call) -> Answer:
    calendar = call.calendar()
    level = call.level(calendar)
    events = Events(calendar, call.world.on_change)
    stored = calendar.events.get(call.path["eventId"])
    if stored is None:
        raise not_found()
    master = stored.resource
    if master.get("status") == "cancelled":
        raise gone()
    key = f"{calendar.id}/instances/{master['id']}"
    if call.params.get("pageToken"):
        page = call.world.next_page(call.params["pageToken"], key)
        if page is None:
            raise invalid("Invalid page token.")
        return _listing_answer(call, calendar, level, page)
    low = call.params.get("timeMin") or datetime(1, 1, 2, tzinfo=UTC)
    high = call.params.get("timeMax") or datetime(9999, 12, 30, tzinfo=UTC)
    deleted = call.params.get("showDeleted", False)
    found = events.expand(master, (low, high), deleted) if master.get("recurrence") else [
        master]
    found.sort(key=lambda e: as_utc(times(e, calendar.tz)[0], calendar.tz))
    items = [listing.render(e, calendar.id, level, True) for e in found]
    size = min(call.params.get("maxResults", 250), 2500)
    return _listing_answer(call, calendar, level, call.world.page(key, items, size, {}))


def events_get(call: Call) -> Answer:
    calendar = call.calendar()
    level = call.level(calendar)
    event = Events(calendar, call.world.on_change).get(call.path["eventId"])
    return 200, listing.render(event, calendar.id, level)


def _mail(call: Call, calendar: CalendarRecord, event: dict[str, Any], action: str) -> None:
    """Record the invitations Google would email (sendUpdates all / externalOnly)."""
    mode = call.params.get("sendUpdates", "none")
    if mode == "none":
        return
    recipients = [a["email"] for a in event.get("attendees") or []
                  if a["email"] != calendar.id
                  and (mode == "all" or a["email"] not in call.world.users)]
    if recipients:
        call.updates.append({"event_id": event["id"], "action": action,
                             "sendUpdates": mode, "recipients": recipients})


def events_insert(call: Call) -> Answer:
    calendar, events = call.writable()
    event = events.insert(call.body, call.user,
                          conference_version=call.params.get("conferenceDataVersion", 0))
    _mail(call, calendar, event, "created")
    return 200, listing.render(event, calendar.id, "full")


def _guests(event: dict[str, Any]) -> set[str]:
    return {a["email"].lower() for a in event.get("attendees") or []}


def events_patch(call: Call) -> Answer:
    calendar, events = call.writable()
    try:
        before = _guests(events.get(call.path["eventId"]))
    except ApiError:
        before = set()
    event = events.update(call.path["eventId"], copy.deepcopy(call.body),
                          replace=call.api_method == "events.update",
                          if_match=call.headers.get("if-match"),
                          conference_version=call.params.get("conferenceDataVersion", 0))
    _mail(call, calendar, event, "updated")
    removed = sorted(before - _guests(event) - {calendar.id})
    if removed and call.params.get("sendUpdates", "none") != "none":
        # Google emails a guest taken off the event its cancellation.
        call.updates.append({"event_id": event["id"], "action": "cancelled",
                             "sendUpdates": call.params["sendUpdates"],
                             "recipients": removed})
    return 200, listing.render(event, calendar.id, "full")


def events_delete(call: Call) -> Answer:
    calendar, events = call.writable()
    event = events.delete(call.path["eventId"], if_match=call.headers.get("if-match"))
    _mail(call, calendar, event, "cancelled")
    return 204, None


def events_watch(call: Call) -> Answer:
    calendar = call.calendar()
    call.level(calendar)
    body = call.body
    if body.get("type") not in ("web_hook", "webhook"):
        raise invalid(f"Invalid channel type: {body.get('type')}")
    if not body.get("id") or not body.get("address"):
        raise invalid("Missing channel id or address.", reason="required")
    if body["id"] in call.push.channels:
        raise invalid(f"Channel id {body['id']} not unique", reason="channelIdNotUnique")
    try:
        ttl = int((body.get("params") or {}).get("ttl", DEFAULT_TTL))
    except ValueError:
        raise invalid("Invalid ttl parameter.") from None
    expires = time.time() + min(max(ttl, 1), MAX_TTL)
    if body.get("expiration"):
        expires = min(expires, int(body["expiration"]) / 1000)
    resource_uri = (f"{call.base_url}/calendar/v3/calendars/{quote(calendar.id, safe='')}"
                    "/events?alt=json")
    channel = Channel(body["id"], Push.resource_id(calendar.id), resource_uri, calendar.id,
                      body["address"], body.get("token"), call.client_id, expires)
    call.push.open(channel)
    answer = {"kind": "api#channel", "id": channel.id, "resourceId": channel.resource_id,
              "resourceUri": resource_uri, "expiration": str(int(expires * 1000))}
    if channel.token is not None:
        answer["token"] = channel.token
    return 200, answer


def channels_stop(call: Call) -> Answer:
    channel = call.push.channels.get(call.body.get("id", ""))
    if channel is None or channel.resource_id != call.body.get("resourceId") \
            or channel.client_id != call.client_id:
        raise not_found(f"Channel '{call.body.get('id')}' not found for project")
    del call.push.channels[channel.id]
    return 204, None


# -- free/busy ----------------------------------------------------------------------------

def _busy(calendar: CalendarRecord, low: datetime, high: datetime) -> list[dict[str, str]]:
    events = Events(calendar, lambda _: None)
    found = listing.full(events, {"singleEvents": True, "timeMin": low, "timeMax": high})
    spans = []
    for event in found:
        if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
            continue
        me = [a for a in event.get("attendees") or [] if a["email"] == calendar.id]
        if me and me[0].get("responseStatus") == "declined":
            continue
        start, end = times(event, calendar.tz)
        spans.append((max(as_utc(start, calendar.tz), low), min(as_utc(end, calendar.tz), high)))
    merged: list[list[datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    zulu = "%Y-%m-%dT%H:%M:%SZ"
    return [{"start": s.strftime(zulu), "end": e.strftime(zulu)} for s, e in merged]


def freebusy_query(call: Call) -> Answer:
    body = call.body
    for name in ("timeMin", "timeMax"):
        if not body.get(name):
            raise invalid(f"Missing {name} parameter.", reason="required")
    low = parse_rfc3339(body["timeMin"], "timeMin").astimezone(UTC)
    high = parse_rfc3339(body["timeMax"], "timeMax").astimezone(UTC)
    if high <= low:
        raise invalid("The specified time range is empty.", reason="timeRangeEmpty")
    if high - low > timedelta(days=FREEBUSY_MAX_DAYS):
        raise invalid("The requested time range is too long.", reason="timeRangeTooLong")
    group_max = min(int(body.get("groupExpansionMax") or GROUP_MAX), GROUP_MAX)
    calendar_max = min(int(body.get("calendarExpansionMax") or FREEBUSY_MAX_CALENDARS),
                       FREEBUSY_MAX_CALENDARS)
    calendars: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    wanted: list[str] = []
    for item in body.get("items") or []:
        item_id = str(item.get("id", ""))
        group = call.world.groups.get(item_id.lower())
        if group is None:
            wanted.append(item_id)
        elif len(group.members) > group_max:
            groups[item_id] = {"errors": [{"domain": "global", "reason": "groupTooBig"}]}
        else:
            groups[item_id] = {"calendars": list(group.members)}
            wanted.extend(group.members)
    for count, calendar_id in enumerate(dict.fromkeys(wanted)):
        calendar = call.world.calendar(call.user, calendar_id)
        if count >= calendar_max:
            calendars[calendar_id] = {"busy": [], "errors": [
                {"domain": "global", "reason": "tooManyCalendarsRequested"}]}
        elif calendar is None or not access.may_query_busy(calendar, call.user, call.scopes):
            calendars[calendar_id] = {"busy": [], "errors": [
                {"domain": "global", "reason": "notFound"}]}
        else:
            calendars[calendar_id] = {"busy": _busy(calendar, low, high)}
    answer: dict[str, Any] = {"kind": "calendar#freeBusy", "timeMin": body["timeMin"],
                              "timeMax": body["timeMax"], "calendars": calendars}
    if groups:
        answer["groups"] = groups
    return 200, answer


HANDLERS: dict[str, Callable[[Call], Answer]] = {
    "calendarList.list": calendar_list_list,
    "calendarList.get": calendar_list_get,
    "calendarList.patch": calendar_list_patch,
    "calendars.insert": calendars_insert,
    "calendars.get": calendars_get,
    "events.list": events_list,
    "events.instances": events_instances,
    "events.get": events_get,
    "events.insert": events_insert,
    "events.patch": events_patch,
    "events.update": events_patch,
    "events.delete": events_delete,
    "events.watch": events_watch,
    "channels.stop": channels_stop,
    "freebusy.query": freebusy_query,
}


def dispatch(call: Call) -> Answer:
    handler = HANDLERS.get(call.api_method)
    if handler is None:
        raise ApiError(501, "notImplemented",
                       f"{call.api_method} is not implemented by the emulator")
    return handler(call)
