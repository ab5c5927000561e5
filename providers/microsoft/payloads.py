"""Graph's JSON as typed dicts, so that ``Any`` stops at the wire (Graph v1.0 resources:
https://learn.microsoft.com/graph/api/resources/event, .../calendar,
.../scheduleinformation). Keys Python cannot spell (``@odata.etag``, ``@removed``) use
the functional TypedDict form."""

from __future__ import annotations

from typing import TypedDict


class DateTimeTimeZone(TypedDict, total=False):
    dateTime: str  # local to timeZone, no offset, up to 7 fractional digits
    timeZone: str  # a Windows name, an IANA name, or "UTC"


class EmailAddress(TypedDict, total=False):
    name: str
    address: str


class Recipient(TypedDict, total=False):
    emailAddress: EmailAddress


class ResponseStatus(TypedDict, total=False):
    response: str  # none, organizer, tentativelyAccepted, accepted, declined, notResponded
    time: str


class Attendee(TypedDict, total=False):
    emailAddress: EmailAddress
    status: ResponseStatus
    type: str  # required, optional, resource


class Coordinates(TypedDict, total=False):
    latitude: float
    longitude: float


class Location(TypedDict, total=False):
    displayName: str
    locationUri: str
    coordinates: Coordinates


class ItemBody(TypedDict, total=False):
    contentType: str  # text, html
    content: str


class OnlineMeetingInfo(TypedDict, total=False):
    joinUrl: str
    conferenceId: str


class ExtendedProperty(TypedDict):
    id: str
    value: str


class Removed(TypedDict, total=False):
    reason: str  # "deleted" (or "changed" on other delta resources)


GraphEvent = TypedDict("GraphEvent", {
    "id": str,
    "@odata.etag": str,
    "@removed": Removed,
    "changeKey": str,
    "lastModifiedDateTime": str,
    "subject": str,
    "body": ItemBody,
    "start": DateTimeTimeZone,
    "end": DateTimeTimeZone,
    "originalStartTimeZone": str,
    "originalEndTimeZone": str,
    "originalStart": str,
    "isAllDay": bool,
    "isCancelled": bool,
    "isOrganizer": bool,
    "showAs": str,  # free, tentative, busy, oof, workingElsewhere, unknown
    "responseStatus": ResponseStatus,
    "sensitivity": str,  # normal, personal, private, confidential
    "type": str,  # singleInstance, occurrence, exception, seriesMaster
    "seriesMasterId": str,
    "iCalUId": str,
    "location": Location,
    "locations": list[Location],
    "attendees": list[Attendee],
    "organizer": Recipient,
    "isOnlineMeeting": bool,
    "onlineMeetingProvider": str,
    "onlineMeeting": OnlineMeetingInfo,
    "onlineMeetingUrl": str,
    "webLink": str,
    "categories": list[str],
    "isReminderOn": bool,
    "reminderMinutesBeforeStart": int,
    "transactionId": str,
    "singleValueExtendedProperties": list[ExtendedProperty],
}, total=False)


EventsPage = TypedDict("EventsPage", {
    "value": list[GraphEvent],
    "@odata.nextLink": str,
    "@odata.deltaLink": str,
}, total=False)


class GraphCalendar(TypedDict, total=False):
    id: str
    name: str
    color: str  # a preset name: auto, lightBlue, …
    hexColor: str  # "#rrggbb", empty when the user never chose a colour
    isDefaultCalendar: bool
    canEdit: bool
    canShare: bool
    owner: EmailAddress
    allowedOnlineMeetingProviders: list[str]  # unknown, skypeForBusiness, teamsForBusiness…
    defaultOnlineMeetingProvider: str
    changeKey: str


CalendarsPage = TypedDict("CalendarsPage", {
    "value": list[GraphCalendar],
    "@odata.nextLink": str,
}, total=False)


class ScheduleItem(TypedDict, total=False):
    status: str  # free, tentative, busy, oof, workingElsewhere, unknown
    start: DateTimeTimeZone
    end: DateTimeTimeZone
    isPrivate: bool


class FreeBusyError(TypedDict, total=False):
    message: str
    responseCode: str


class WorkingHoursZone(TypedDict, total=False):
    name: str  # a Windows or IANA zone name


class WorkingHours(TypedDict, total=False):
    timeZone: WorkingHoursZone


class ScheduleInformation(TypedDict, total=False):
    scheduleId: str
    availabilityView: str
    scheduleItems: list[ScheduleItem]
    workingHours: WorkingHours
    error: FreeBusyError


class GraphRoom(TypedDict, total=False):
    """A place of type room (https://learn.microsoft.com/graph/api/resources/room)."""

    id: str
    displayName: str
    emailAddress: str
    capacity: int


RoomsPage = TypedDict("RoomsPage", {"value": list[GraphRoom], "@odata.nextLink": str},
                      total=False)
