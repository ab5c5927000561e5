"""The events area: reads, free/busy and their pages, writes (API.md s5, s6, s7)."""

from __future__ import annotations

from providers.registry import read_extras
from providers.support import FIELD_SUPPORT

from ..event_body import (
    INTERACTIONS,
    MAX_DESCRIPTION,
    MAX_JOIN_URL,
    MAX_NAME,
    MAX_SUBSCRIPTIONS,
    MAX_SUMMARY,
    MAX_URL,
)
from ..recurrence_body import MAX_COUNT, MAX_INTERVAL
from .schema import (
    BEARER,
    BOOL_PARAM,
    DATE_PATTERN,
    TIME_PATTERN,
    ZONE_PATTERN,
    Json,
    array,
    body,
    errors,
    header,
    nullable,
    obj,
    path,
    query,
    ref,
    reply,
    string,
)

TIME = string("a Time: 2014-08-05T14:30:00Z (also +00:00, UTC, a space for T)",
              pattern=TIME_PATTERN)
DATE = string("a Date", pattern=DATE_PATTERN, format="date")
ZONE = string("an IANA time zone, e.g. Europe/London", pattern=ZONE_PATTERN, minLength=1,
              examples=["Etc/UTC", "Europe/London"])
ZONED = obj({"time": {"anyOf": [TIME, DATE]}, "tzid": ZONE}, ("time",))
WHEN_IN = {"anyOf": [TIME, DATE, ZONED],
           "description": "a Time, a Date (all day; end exclusive) or {time, tzid}"}
WHEN_OUT = {"anyOf": [
    string("UTC: 2014-08-05T14:30:00Z", pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"),
    string("a Date (all day; end exclusive)", pattern=DATE_PATTERN),
    obj({"time": string(), "tzid": string()}, ("time", "tzid"),
        description="with localized_times: local time with offset, and its zone")]}
UTC_TIME = string(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PERSON = obj({"email": string(), "display_name": nullable(string())}, ("email",))

EVENT = obj({
    "calendar_id": string(), "event_uid": string(),
    "event_id": string("the app's own id (managed events only)"),
    "summary": string(), "description": string(),
    "location": obj({"description": string(),
                     "lat": string("with include_geo=true, where the event has coordinates"),
                     "long": string("with include_geo=true")}),
    "url": string("the event's URL, " + FIELD_SUPPORT["url_read"]),
    "reminders": array(obj({"minutes": {"type": "integer"}}, ("minutes",)),
                       description="the event's own reminders, where the provider says"),
    "meeting_url": string(),
    "conferencing": obj({"provider_name": string(), "join_url": string()}),
    "start": WHEN_OUT, "end": WHEN_OUT, "deleted": {"type": "boolean"},
    "created": UTC_TIME, "updated": UTC_TIME,
    "participation_status": string(enum=["needs_action", "accepted", "declined", "tentative",
                                         "unknown"]),
    "attendees": array(obj({"email": string(), "display_name": nullable(string()),
                            "status": string()})),
    "organizer": obj({"email": nullable(string()), "display_name": nullable(string())}),
    "transparency": string(enum=["opaque", "transparent", "unknown"]),
    "extended_transparency": string(enum=["opaque", "transparent", "tentative",
                                          "out_of_office", "working_elsewhere"]),
    "status": string(enum=["confirmed", "tentative", "cancelled", "unknown"]),
    "categories": array(string()), "recurring": {"type": "boolean"},
    "event_private": {"type": "boolean"},
    "options": obj({k: {"type": "boolean"} for k in
                    ("delete", "update", "change_participation_status")},
                   ("delete", "update", "change_participation_status")),
}, ("calendar_id", "event_uid", "start", "end", "deleted", "created", "updated",
    "participation_status", "transparency", "status", "categories", "recurring",
    "event_private", "options"))

BLOCK = obj({"calendar_id": string(), "start": WHEN_OUT, "end": WHEN_OUT,
             "free_busy_status": string(enum=["busy", "tentative"])},
            ("calendar_id", "start", "end", "free_busy_status"))

PAGES = obj({"current": {"type": "integer", "minimum": 1},
             "total": {"type": "integer", "minimum": 0},
             "next_page": string("present while current < total", format="uri")},
            ("current", "total"))

SCHEMAS: dict[str, Json] = {"Event": EVENT, "FreeBusyBlock": BLOCK, "Pages": PAGES}

_COMMON_READ = [
    query("tzid", ZONE, "the zone that Dates in from/to are read in", required=True),
    query("from", {"anyOf": [DATE, TIME]}, "start of the window (Date or Time); default "
          "the sync window's start"),
    query("to", {"anyOf": [DATE, TIME]}, "end of the window, exclusive"),
    query("include_managed", BOOL_PARAM, "include the app's own events"),
    query("localized_times", BOOL_PARAM, "times as {time, tzid} in the event's zone"),
    {"name": "calendar_ids[]", "in": "query", "required": False, "style": "form",
     "explode": True, "description": "only these calendars",
     "schema": array(string(minLength=1))},
]
_EVENT_READ = [
    query("last_modified", TIME, "only events changed since (use a notification's "
          "changes_since)"),
    query("include_deleted", BOOL_PARAM, "include deleted events (deleted: true)"),
    query("include_moved", BOOL_PARAM, "accepted; moved events are always included"),
    query("include_geo", BOOL_PARAM, "add location.lat and location.long where known"),
    query("only_managed", BOOL_PARAM, "only the app's own events (create_event or "
          "delete_event suffice)"),
]


def _read(op: str, summary: str, key: str, item: str, params: list[Json]) -> Json:
    return {"operationId": op, "tags": ["Events"], "security": BEARER, "summary": summary,
            "description": summary + " Query parameters may also come in a JSON or form body; "
                                     "next_page links continue the same query.",
            "parameters": params, "responses": {
                "200": reply("A page", obj({"pages": ref("Pages"), key: array(ref(item))},
                                           ("pages", key))), **errors(403, 404, 422)}}


def _page(op: str, key: str, item: str) -> Json:
    return {"operationId": op, "tags": ["Events"], "security": BEARER,
            "summary": "A later page of a read (the next_page URL).",
            "parameters": [path("token", "sealed paging state; 404 once expired (1 hour)")],
            "responses": {"200": reply("A page", obj(
                {"pages": ref("Pages"), key: array(ref(item))}, ("pages", key))),
                **errors(403, 404)}}


# Calgate's additions to the event (never a Cronofy field's meaning changed): how the app's
# own latest write stands upstream, absent once applied.
CALGATE_WRITE = obj({
    "status": string(enum=["pending", "retrying", "failed"]),
    "error": string("why the last attempt failed")}, ("status",),
    description="Calgate: the app's latest write of this event is not applied upstream yet "
                "(pending, retrying) or was refused for good (failed). Reads show the "
                "desired state of a pending write at once (read-your-writes).")
EVENT["properties"]["calgate_write"] = CALGATE_WRITE

_USERINFO = query("include_userinfo", BOOL_PARAM, "answer 200 with the account's "
                  "userinfo (as GET /v1/userinfo) in the body, under userinfo")
_USERINFO_BODY = {"type": "object", "description": "with include_userinfo: as GET /v1/userinfo"}


def _reminder() -> Json:
    return obj({"minutes": {"type": "integer"}}, ("minutes",))


_KEPT = "Omitted on an update: kept."
UPSERT = obj({
    "event_id": string("the app's key: the first upsert of a (calendar_id, event_id) "
                       "creates the event, later ones update it", minLength=1),
    "summary": string("required on every upsert", maxLength=MAX_SUMMARY, minLength=1),
    "description": string("plain text. " + _KEPT + " Empty or null clears it; on a create "
                          "it defaults to none", maxLength=MAX_DESCRIPTION),
    "start": WHEN_IN, "end": WHEN_IN,
    "tzid": ZONE,
    "location": obj({"description": string(), "lat": string("decimal degrees, -90 to 90"),
                     "long": string("decimal degrees, -180 to 180")},
                    description="lat and long come together. " + _KEPT + " Sent, it "
                    "replaces the whole location (null clears it). "
                    + FIELD_SUPPORT["location"]),
    "url": nullable(string("the event's URL. " + _KEPT + " An explicit null clears it. "
                           + FIELD_SUPPORT["url"], maxLength=MAX_URL)),
    "transparency": string("busy or free. " + _KEPT + " On a create: opaque",
                           enum=["opaque", "transparent"]),
    "extended_transparency": string(
        "the busy state; it sets transparency too (transparent and working_elsewhere are "
        "free). " + _KEPT + " " + FIELD_SUPPORT["extended_transparency"],
        enum=["opaque", "transparent", "tentative", "out_of_office", "working_elsewhere"]),
    "event_private": {"type": "boolean", "description": FIELD_SUPPORT["event_private"]
                      + ". " + _KEPT + " On a create: false"},
    "reminders": array(_reminder(), maxItems=10, description=(
        "minutes before the start (0 to 40320), in priority order, never sorted: "
        + FIELD_SUPPORT["reminders"] + ". [] means no reminders. " + _KEPT
        + " On a create: the calendar's defaults")),
    "reminders_create_only": {"type": "boolean", "description": (
        "apply the reminders only if this upsert creates the event; once created, the "
        "event's reminders are its owner's and later upserts leave them alone")},
    "color": string("#RRGGBB. " + FIELD_SUPPORT["color"] + ". " + _KEPT
                    + " On a create: the calendar's colour",
                    pattern=r"^#[0-9a-fA-F]{6}$"),
    "attendees": obj({k: array(obj({"email": string(format="email"),
                                    "display_name": string()}, ("email",)))
                      for k in ("invite", "reject", "remove")}, description=(
        "invite adds people (or updates their display_name); reject (remove, the C# SDK's "
        "spelling) takes them off. People neither invited nor rejected stay as they are; "
        "omitted, the attendees are kept. Those invited are sent the invitation and those "
        "taken off a cancellation, by the provider: " + FIELD_SUPPORT["attendees"])),
    "conferencing": obj({"profile_id": string(enum=["default", "integrated"])},
                        ("profile_id",), description=_KEPT),
    "event_uid": string("instead of event_id: change an event the app did not create "
                        "(elevated permissions); only the fields sent change, start and end "
                        "together; attendees, reminders, conferencing, url and "
                        "event_private are refused (422)", minLength=1),
    "include_userinfo": BOOL_PARAM,
}, description="event_id, summary, start and end for the app's own events; event_uid and "
               "at least one field to change for another's (event_id wins if both)")

# Recurring managed events (Cronofy's recurrence.rules[]; one rule): one series upstream.
RECURRENCE_RULE = obj({
    "frequency": string(enum=["daily", "weekly", "monthly", "yearly"]),
    "interval": {"type": "integer", "minimum": 1, "maximum": MAX_INTERVAL},
    "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT,
              "description": "occurrences in all; not with until"},
    "until": {"anyOf": [DATE, TIME], "description": "the last day an occurrence may start "
              "on (inclusive, in the event's zone); not with count"},
    "by_day": array(string(enum=["monday", "tuesday", "wednesday", "thursday", "friday",
                                 "saturday", "sunday"]),
                    description="weekly rules only; default: the start's weekday"),
}, ("frequency",))
UPSERT["properties"]["recurrence"] = nullable(obj(
    {"rules": array(RECURRENCE_RULE, maxItems=1)}, ("rules",))) | {
    "description": "a series, {rules: [{frequency, interval?, count? | until?, by_day?}]}: "
                   "one rule (an empty list or null: a single event; omitted on an update: "
                   "kept); read back as one event per occurrence. A calendar whose provider "
                   "cannot keep a series: 422 errors.unsupported"}
EVENT["properties"]["series_identifier"] = string(
    "recurring events only: the same for every occurrence of one series")

UPSERT_DESCRIPTION = (
    "Create or update the app's event (event_id). Needs `create_event`. An update changes "
    "only the fields the request carries, merged over the event as Calgate last recorded "
    "it (so quick successive partial upserts compose, and concurrent ones lose nothing); "
    "a field the calendar's provider cannot write is refused with a 422 naming it "
    "(errors.unsupported) before anything is accepted.")

DELETE = obj({"event_id": string(minLength=1),
              "event_uid": string("instead of event_id: delete an event the app did not "
                                  "create (elevated permissions; 403 without)", minLength=1),
              "include_userinfo": BOOL_PARAM},
             description="event_id, or event_uid (event_id wins if both)")
BULK_DELETE = obj({"delete_all": BOOL_PARAM,
                   "calendar_ids": array(string(minLength=1), minItems=1)},
                  description="exactly one of delete_all=true or calendar_ids")
PARTICIPATION = obj({"status": string(enum=["accepted", "tentative", "declined"])},
                    ("status",))
_CALENDAR = path("calendar_id", "a writable calendar of this account")
_PREFER = {"name": "Prefer", "in": "header", "required": False,
           "description": "wait=N (N ≤ 30): answer 200 once applied upstream",
           "schema": string(pattern=r"^wait=\d{1,2}$")}
_APPLIED = {"Preference-Applied": header("wait=N")}


def _write(op: str, summary: str, schema: Json, *extra: Json, scope: str) -> Json:
    return {"operationId": op, "tags": ["Events"], "security": BEARER, "summary": summary,
            "description": f"{summary} Needs `{scope}`.", "parameters": list(extra),
            "requestBody": body(schema, form=False), "responses": {
                "202": reply("Accepted: recorded, to be applied upstream by the worker."),
                **errors(403, 404, 422)}}


PATHS: dict[str, Json] = {
    "/v1/events": {
        "get": _read("readEvents", "Events in the account's calendars, from the mirror.",
                     "events", "Event", _COMMON_READ + _EVENT_READ),
        "delete": _write("bulkDeleteEvents", "Delete the app's own events in every calendar "
                         "or in some.", BULK_DELETE, scope="delete_event")
        | {"parameters": [query("delete_all", BOOL_PARAM, "every managed event"),
                          {"name": "calendar_ids[]", "in": "query", "style": "form",
                           "explode": True, "description": "only in these calendars",
                           "schema": array(string(minLength=1))}],
           "requestBody": body(BULK_DELETE, form=False, required=False)}},
    "/v1/events/pages/{token}": {"get": _page("readEventsPage", "events", "Event")},
    "/v1/free_busy": {"get": _read("readFreeBusy", "Busy and tentative times (needs "
                                   "read_free_busy).", "free_busy", "FreeBusyBlock",
                                   _COMMON_READ)},
    "/v1/free_busy/pages/{token}": {"get": _page("readFreeBusyPage", "free_busy",
                                                  "FreeBusyBlock")},
    "/v1/calendars/{calendar_id}/events": {
        "post": _write("upsertEvent", "Create or update the app's event (event_id). The "
                       "next read shows it at once, with calgate_write pending.", UPSERT,
                       _CALENDAR, _PREFER, _USERINFO, scope="create_event")
        | {"description": UPSERT_DESCRIPTION, "responses": {
            "200": reply("Applied upstream within Prefer: wait=N (event, and "
                         "Preference-Applied), or recorded with include_userinfo=true "
                         "(userinfo).", obj({"event": ref("Event"),
                                             "userinfo": _USERINFO_BODY}),
                         headers=_APPLIED),
            "202": reply("Accepted: recorded, to be applied upstream by the worker."),
            **errors(403, 404, 422)}},
        "delete": _write("deleteEvent", "Delete the app's event (event_id). The next read "
                         "no longer shows it.", DELETE, _CALENDAR, _PREFER, _USERINFO,
                         scope="delete_event")
        | {"responses": {
            "200": reply("Applied upstream within Prefer: wait=N ({} and "
                         "Preference-Applied), or recorded with include_userinfo=true "
                         "(userinfo).", obj({"userinfo": _USERINFO_BODY}),
                         headers=_APPLIED),
            "202": reply("Accepted: recorded, to be applied upstream by the worker."),
            **errors(403, 404, 422)}}},
    "/v1/calendars/{calendar_id}/events/{event_uid}/participation_status": {"post": _write(
        "changeParticipationStatus", "Accept, decline or tentatively accept an invitation.",
        PARTICIPATION, _CALENDAR, path("event_uid", "the invitation's event_uid"),
        scope="change_participation_status") | {"requestBody": body(PARTICIPATION)}},
}

# Free/busy flags (the C# SDK's include_ids / include_free): each block's ids, and the
# transparent events' blocks as free.
BLOCK["properties"] |= {
    "free_busy_status": string(enum=["busy", "tentative", "free"]),
    "event_uid": string("with include_ids"),
    "event_id": string("with include_ids, on the app's own events (include_managed)")}
PATHS["/v1/free_busy"]["get"]["parameters"] = [
    *_COMMON_READ,
    query("include_ids", BOOL_PARAM, "each block carries its event's event_uid (and "
          "event_id for the app's own events)"),
    query("include_free", BOOL_PARAM, "also the blocks of transparent events, as free")]

# Provider-declared read extras: a flag adds a field to the events of the providers that
# declare it (the registry names both; no provider is named here).
for _extra in read_extras():
    EVENT["properties"][_extra.field] = string(f"with {_extra.flag}=true, on the events of "
                                               "the providers that have it")
    PATHS["/v1/events"]["get"]["parameters"].append(query(
        _extra.flag, BOOL_PARAM, f"add {_extra.field} to the events of the providers that "
        "have it"))

# Explicit conferencing: the app's own meeting link.
UPSERT["properties"]["conferencing"] = obj({
    "profile_id": string(enum=["default", "integrated", "explicit"]),
    "provider_description": string("explicit: whose meeting it is, as the app names it "
                                   "(read back as conferencing.provider_name)",
                                   minLength=1, maxLength=MAX_NAME),
    "join_url": string("explicit: the https link to join (the location too when none is "
                       "given)", format="uri", maxLength=MAX_JOIN_URL),
}, ("profile_id",), description="default/integrated: the calendar's own meeting where it "
   "has one; explicit: the app's own link, written where the calendar keeps meeting links "
   "(provider_description and join_url required)")

# Per-event webhooks (Cronofy's Conferencing Services push notifications).
UPSERT["properties"]["subscriptions"] = nullable(array(obj({
    "type": string(enum=["webhook"]),
    "uri": string("where notifications are POSTed: https, or plain http to a host the "
                  "operator allows (as a channel's callback_url)", format="uri",
                  maxLength=MAX_URL),
    "interactions": array(obj({"type": string(enum=sorted(INTERACTIONS))}, ("type",)),
                          minItems=1),
}, ("uri", "interactions")), maxItems=MAX_SUBSCRIPTIONS)) | {
    "description": "per-event webhooks, kept with the event: given, they replace the list; "
                   "omitted on an update, kept; [] or null clears them. Only "
                   "conferencing_assigned is taken (conferencing_failing and other types: "
                   "422 errors.unsupported naming subscriptions); a uri Calgate must not "
                   "reach: 422 (errors.https_required, errors.forbidden_address, …). "
                   "When the upstream gives the event a meeting URL it did not have (one "
                   "the calendar made, not the app's explicit link), each subscription to "
                   "conferencing_assigned is POSTed once per join URL, signed like channel "
                   "notifications: {\"notification\": {\"type\": "
                   "\"conferencing_assigned\", \"notification_id\"}, \"event\": "
                   "{calendar_id, event_id, event_uid, conferencing: {provider_name, "
                   "join_url}}} (Calgate's own body; de-duplicate by notification_id)."}
