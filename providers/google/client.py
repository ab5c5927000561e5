"""The wire calls, blocking (the provider runs each in a worker thread), with the raw
payloads typed so that ``Any`` stops here.

google-api-python-client builds requests from the discovery document it ships (the static
one: no network), over httplib2 authorised by google-auth. httplib2.Http is not thread-safe,
so each worker thread gets its own Http and service object; all share one Credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypedDict, TypeVar, cast

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from googleapiclient.discovery import build_from_document  # type: ignore[import-untyped]
from googleapiclient.discovery_cache import get_static_doc  # type: ignore[import-untyped]

from .config import GoogleEndpoints
from .credentials import TOKENS, AccountSecrets, TokenCache, make_credentials
from .errors import translated

T = TypeVar("T")
PAGE_SIZE = 2500  # events.list's largest page
LIST_PAGE_SIZE = 250  # calendarList.list's largest page
RESOURCE_PAGE_SIZE = 500  # resources.calendars.list's largest page
# The organisation of the signed-in administrator (the Directory API's alias).
MY_CUSTOMER = "my_customer"


class EventDateTime(TypedDict, total=False):
    date: str
    dateTime: str
    timeZone: str


class Attendee(TypedDict, total=False):
    email: str
    displayName: str
    responseStatus: str
    self: bool
    organizer: bool


class Reminder(TypedDict, total=False):
    method: str
    minutes: int


class Reminders(TypedDict, total=False):
    useDefault: bool
    overrides: list[Reminder]


class GoogleEvent(TypedDict, total=False):
    id: str
    status: str
    etag: str
    updated: str
    summary: str
    description: str
    location: str
    start: EventDateTime
    end: EventDateTime
    originalStartTime: EventDateTime
    recurringEventId: str
    recurrence: list[str]
    transparency: str
    visibility: str
    attendees: list[Attendee]
    organizer: Attendee
    extendedProperties: dict[str, dict[str, str]]
    hangoutLink: str
    conferenceData: dict[str, Any]
    source: dict[str, str]
    reminders: Reminders
    colorId: str


class EventsPage(TypedDict, total=False):
    items: list[GoogleEvent]
    nextPageToken: str
    nextSyncToken: str
    timeZone: str


class CalendarEntry(TypedDict, total=False):
    id: str
    summary: str
    summaryOverride: str
    accessRole: str
    backgroundColor: str
    timeZone: str
    primary: bool


class CalendarPage(TypedDict, total=False):
    items: list[CalendarEntry]
    nextPageToken: str


class FreeBusyCalendar(TypedDict, total=False):
    busy: list[dict[str, str]]
    errors: list[dict[str, str]]


class FreeBusyAnswer(TypedDict, total=False):
    calendars: dict[str, FreeBusyCalendar]


class CalendarResource(TypedDict, total=False):
    resourceId: str
    resourceName: str
    resourceEmail: str
    resourceCategory: str  # CONFERENCE_ROOM, OTHER, CATEGORY_UNKNOWN
    generatedResourceName: str
    capacity: int


class ResourcePage(TypedDict, total=False):
    items: list[CalendarResource]
    nextPageToken: str


class ChannelAnswer(TypedDict, total=False):
    id: str
    resourceId: str
    expiration: str


@cache
def _document(api: str = "calendar", version: str = "v3") -> str:
    """A discovery document googleapiclient ships (what ``build(...,
    static_discovery=True)`` reads: calendar v3, or admin directory_v1 for rooms), loaded
    once instead of once per thread."""
    document: str = get_static_doc(api, version)
    return document


class GoogleClient:
    """One account's calls to the Calendar API."""

    def __init__(self, secrets: AccountSecrets, endpoints: GoogleEndpoints, *,
                 timeout: float, user_agent: str, tokens: TokenCache = TOKENS) -> None:
        self.secrets = secrets
        self.endpoints = endpoints
        self.timeout = timeout
        self.user_agent = user_agent
        self.tokens = tokens
        self.credentials, self.token_key = make_credentials(secrets, endpoints, tokens)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._transports: list[httplib2.Http] = []

    def _service(self) -> Any:
        return self._built("service", _document(), self.endpoints.api_endpoint)

    def _directory(self) -> Any:
        """The Admin SDK Directory API, built only when rooms are listed."""
        return self._built("directory", _document("admin", "directory_v1"),
                           self.endpoints.directory_endpoint)

    def _built(self, attribute: str, document: str, endpoint: str) -> Any:
        service = getattr(self._local, attribute, None)
        if service is None:
            transport = httplib2.Http(timeout=self.timeout)
            with self._lock:
                self._transports.append(transport)
            authorised = google_auth_httplib2.AuthorizedHttp(self.credentials, http=transport)
            service = build_from_document(document, http=authorised,
                                          client_options={"api_endpoint": endpoint})
            setattr(self._local, attribute, service)
        return service

    def _run(self, what: str, make: Callable[[Any], Any], if_match: str | None = None,
             api: Callable[[], Any] | None = None) -> Any:
        with translated(what):
            request = make((api or self._service)())
            request.headers["user-agent"] = f"{self.user_agent} (gzip)"
            if if_match:
                request.headers["If-Match"] = if_match
            try:
                return request.execute(num_retries=0)  # the provider retries, with jitter
            finally:
                self.tokens.save(self.token_key, self.credentials)

    def close(self) -> None:
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()

    # -- calendars ------------------------------------------------------------------------

    def calendar_entry(self, calendar_id: str) -> CalendarEntry:
        return cast(CalendarEntry, self._run("calendarList.get", lambda s: s.calendarList()
                                             .get(calendarId=calendar_id)))

    def calendar_page(self, page_token: str | None) -> CalendarPage:
        return cast(CalendarPage, self._run("calendarList.list", lambda s: s.calendarList()
                                            .list(maxResults=LIST_PAGE_SIZE,
                                                  pageToken=page_token)))

    def insert_calendar(self, summary: str) -> CalendarEntry:
        return cast(CalendarEntry, self._run("calendars.insert", lambda s: s.calendars()
                                             .insert(body={"summary": summary})))

    def color_calendar(self, calendar_id: str, color: str) -> CalendarEntry:
        body = {"backgroundColor": color, "foregroundColor": "#000000"}
        return cast(CalendarEntry, self._run("calendarList.patch", lambda s: s.calendarList()
                                             .patch(calendarId=calendar_id, body=body,
                                                    colorRgbFormat=True)))

    # -- events ---------------------------------------------------------------------------

    def events_page(self, calendar_id: str, params: dict[str, Any]) -> EventsPage:
        return cast(EventsPage, self._run("events.list", lambda s: s.events().list(
            calendarId=calendar_id, maxResults=PAGE_SIZE, **params)))

    def instances_page(self, calendar_id: str, event_id: str,
                       params: dict[str, Any]) -> EventsPage:
        return cast(EventsPage, self._run("events.instances", lambda s: s.events().instances(
            calendarId=calendar_id, eventId=event_id, maxResults=PAGE_SIZE, **params)))

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        return cast(GoogleEvent, self._run("events.get", lambda s: s.events().get(
            calendarId=calendar_id, eventId=event_id)))

    def insert_event(self, calendar_id: str, body: dict[str, Any],
                     send_updates: str) -> GoogleEvent:
        return cast(GoogleEvent, self._run("events.insert", lambda s: s.events().insert(
            calendarId=calendar_id, body=body, sendUpdates=send_updates,
            conferenceDataVersion=1)))

    def patch_event(self, calendar_id: str, event_id: str, body: dict[str, Any],
                    send_updates: str, if_match: str | None) -> GoogleEvent:
        return cast(GoogleEvent, self._run("events.patch", lambda s: s.events().patch(
            calendarId=calendar_id, eventId=event_id, body=body, sendUpdates=send_updates,
            conferenceDataVersion=1), if_match))

    def delete_event(self, calendar_id: str, event_id: str, send_updates: str,
                     if_match: str | None) -> None:
        self._run("events.delete", lambda s: s.events().delete(
            calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates), if_match)

    def free_busy(self, body: dict[str, Any]) -> FreeBusyAnswer:
        return cast(FreeBusyAnswer, self._run("freebusy.query",
                                              lambda s: s.freebusy().query(body=body)))

    # -- the organisation's rooms (Admin SDK) ----------------------------------------------

    def resource_page(self, page_token: str | None) -> ResourcePage:
        return cast(ResourcePage, self._run(
            "resources.calendars.list", lambda s: s.resources().calendars().list(
                customer=MY_CUSTOMER, maxResults=RESOURCE_PAGE_SIZE, pageToken=page_token),
            api=self._directory))

    # -- push -----------------------------------------------------------------------------

    def watch(self, calendar_id: str, body: dict[str, Any]) -> ChannelAnswer:
        return cast(ChannelAnswer, self._run("events.watch", lambda s: s.events().watch(
            calendarId=calendar_id, body=body)))

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        self._run("channels.stop", lambda s: s.channels().stop(
            body={"id": channel_id, "resourceId": resource_id}))
