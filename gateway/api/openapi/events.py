"""The events area: reads, free/busy and their pages, writes (API.md s5, s6, s7)."""

from __future__ import annotations

from ..event_body import MAX_DESCRIPTION, MAX_SUMMARY
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
    "location": obj({"description": string()}), "meeting_url": string(),
    "conferencing": obj({"provider_name": string(), "join_url": string()}),
    "start": WHEN_OUT, "end": WHEN_OUT, "deleted": {"type": "boolean"},
    "created": UTC_TIME, "updated": UTC_TIME,
    "participation_status": string(enum=["needs_action", "accepted", "declined", "tentative",
                                         "unknown"]),
    "attendees": array(obj({"email": string(), "display_name": nullable(string()),
                            "status": string()})),
    "organizer": obj({"email": nullable(string()), "display_name": nullable(string())}),
    "transparency": string(enum=["opaque", "transparent", "unknown"]),
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
    query("include_geo", BOOL_PARAM, "accepted; no coordinates are kept"),
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


UPSERT = obj({
    "event_id": string("the app's key: the same (calendar_id, event_id) updates", minLength=1),
    "summary": string(maxLength=MAX_SUMMARY, minLength=1),
    "description": string(maxLength=MAX_DESCRIPTION),
    "start": WHEN_IN, "end": WHEN_IN,
    "tzid": ZONE,
    "location": obj({"description": string(), "lat": string(), "long": string()}),
    "url": nullable(string(format="uri")),
    "transparency": string(enum=["opaque", "transparent"]),
    "event_private": {"type": "boolean"},
    "reminders": array(_reminder()),
    "attendees": obj({k: array(obj({"email": string(format="email"),
                                    "display_name": string()}, ("email",)))
                      for k in ("invite", "reject", "remove")}),
    "conferencing": obj({"profile_id": string(enum=["default", "integrated"])},
                        ("profile_id",)),
    "include_userinfo": BOOL_PARAM,
}, ("event_id", "summary", "start", "end"))

DELETE = obj({"event_id": string(minLength=1),
              "event_uid": string("an external event: 403, not offered yet"),
              "include_userinfo": BOOL_PARAM}, ("event_id",))
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
        | {"responses": {
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
