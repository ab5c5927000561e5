"""Pure conversions from the model to Graph request bodies: a managed event's create and
PATCH bodies, an invitation answer, a new calendar, a getSchedule query.

Idempotent creates: every create carries a ``transactionId`` made from the managed key
(Graph does not make a second event for a repeated POST with the same one; sync reads the
key back from it, as delta cannot expand extended properties) and the key itself in a
single-value extended property, which writes read back through ``$expand``. A create retried
after a lost answer needs no look-up: the repeated ``transactionId`` returns the first
attempt's event.
https://learn.microsoft.com/graph/api/resources/event (transactionId)
https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InvalidInput
from ..model import EventDraft, EventPatch, ExtendedTransparency, Participation, TimeWindow
from .mapping import MANAGED_PROPERTY, TEAMS, transaction_id
from .recurrence import patterned_recurrence
from .times import utc_text, write_when

# Graph keeps one reminder per event; Cronofy's list is in the client's order and Outlook
# takes the first. https://learn.microsoft.com/graph/api/resources/event
MAX_REMINDER_MINUTES = 40_320  # four weeks, as for Google
# event accept / tentativelyAccept / decline actions.
# https://learn.microsoft.com/graph/api/event-accept
ACTIONS: dict[Participation, str] = {
    "accepted": "accept", "tentative": "tentativelyAccept", "declined": "decline"}
SCHEDULE_INTERVAL_MINUTES = 15


# Cronofy's extended_transparency -> showAs (free, tentative, busy, oof, workingElsewhere).
SHOW_AS: dict[ExtendedTransparency, str] = {
    "opaque": "busy", "transparent": "free", "tentative": "tentative",
    "out_of_office": "oof", "working_elsewhere": "workingElsewhere"}


def _reminders(minutes: tuple[int, ...] | None) -> dict[str, Any]:
    """Graph keeps one reminder: the client's first (its highest priority). None: the
    mailbox's default, so nothing is sent."""
    if minutes is None:
        return {}
    if not minutes:
        return {"isReminderOn": False}
    first = min(max(int(minutes[0]), 0), MAX_REMINDER_MINUTES)
    return {"isReminderOn": True, "reminderMinutesBeforeStart": first}


def _location(draft: EventDraft) -> dict[str, Any]:
    """The location; its coordinates (Cronofy's lat/long strings) as Graph's numbers. The
    whole object is written, so coordinates an earlier version set are cleared. An app's own
    meeting link (explicit conferencing) rides along as the location's ``locationUri``
    (Graph's online-meeting fields are read-only or Teams only), and is the location's text
    when the app gave none, as Cronofy writes it."""
    link = draft.conference_link
    location: dict[str, Any] = {"displayName": draft.location or (link.join_url if link
                                                                   else "")}
    if link is not None:
        location["locationUri"] = link.join_url
    if draft.geo:
        location["coordinates"] = {"latitude": float(draft.geo[0]),
                                   "longitude": float(draft.geo[1])}
    return location


def _attendees(draft: EventDraft) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": p.email, **({"name": p.display_name}
                                                      if p.display_name else {})},
             "type": "required"} for p in draft.attendees]


def update_body(draft: EventDraft, teams_allowed: bool, *, creating: bool = False
                ) -> dict[str, Any]:
    """Every field Calgate owns on a managed event, for a PATCH that replaces what an
    earlier version wrote (empty strings clear text; an empty list clears attendees; Graph
    itself sends a cancellation to an attendee the PATCH leaves out, and Calgate leaves out
    only those the client removed). Reminders set with ``reminders_create_only`` are left
    out of an update. The colour and the URL are refused for Microsoft calendars before
    a write is accepted (Graph has no event URL; colours are the mailbox's categories).

    A Teams meeting is asked for only when the draft wants conferencing and the calendar's
    ``allowedOnlineMeetingProviders`` include Teams. Once an event is online Outlook keeps
    it online, so the body never sends ``isOnlineMeeting: false``."""
    if isinstance(draft.start, datetime) != isinstance(draft.end, datetime):
        raise InvalidInput("start and end must both be dates or both be times")
    all_day = not isinstance(draft.start, datetime)
    body: dict[str, Any] = {
        "subject": draft.summary,
        "body": {"contentType": "text", "content": draft.description},
        "start": write_when(draft.start, draft.start_tzid),
        "end": write_when(draft.end, draft.start_tzid if all_day else draft.end_tzid),
        "isAllDay": all_day,
        "location": _location(draft),
        "showAs": SHOW_AS[draft.busy_state],
        "sensitivity": "private" if draft.private else "normal",
        "attendees": _attendees(draft),
        **({} if draft.reminders_create_only and not creating
           else _reminders(draft.reminders_minutes)),
        "singleValueExtendedProperties": [{"id": MANAGED_PROPERTY,
                                           "value": draft.managed_key}],
    }
    # One series (a seriesMaster); null turns a series back into a single event.
    body["recurrence"] = patterned_recurrence(draft)
    if draft.conferencing and teams_allowed:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = TEAMS
    return body


def create_body(draft: EventDraft, teams_allowed: bool) -> dict[str, Any]:
    """:func:`update_body` plus the ``transactionId`` for an idempotent POST."""
    body = update_body(draft, teams_allowed, creating=True)
    body["transactionId"] = transaction_id(draft.managed_key)
    return body


def patch_body(patch: EventPatch) -> dict[str, Any]:
    """Only the fields an external event's patch sets: a Graph PATCH leaves the others as
    they are (attendees, reminders, the online meeting, categories)."""
    body: dict[str, Any] = {}
    if patch.summary is not None:
        body["subject"] = patch.summary
    if patch.description is not None:
        body["body"] = {"contentType": "text", "content": patch.description}
    if patch.location is not None:
        body["location"] = {"displayName": patch.location}
    times = patch.times
    if times is not None:
        all_day = not isinstance(times[0], datetime)
        body["start"] = write_when(times[0], patch.start_tzid)
        body["end"] = write_when(times[1], patch.start_tzid if all_day else patch.end_tzid)
        body["isAllDay"] = all_day
    if patch.transparency is not None:
        body["showAs"] = "free" if patch.transparency == "transparent" else "busy"
    return body


def answer_action(status: Participation) -> str:
    """The event action that answers an invitation with ``status``."""
    try:
        return ACTIONS[status]
    except KeyError:
        raise InvalidInput(f"cannot answer an invitation with {status!r}") from None


def answer_body(send_response: bool = True) -> dict[str, Any]:
    return {"sendResponse": send_response}


def calendar_body(name: str) -> dict[str, Any]:
    """A new calendar. Its colour cannot be set through Graph: ``hexColor`` is read-only and
    ``color`` takes only presets, so Outlook picks one."""
    if not name.strip():
        raise InvalidInput("a calendar needs a name")
    return {"name": name}


def schedule_body(address: str, window: TimeWindow) -> dict[str, Any]:
    """getSchedule's query for one mailbox over ``window`` (at most 62 days: the caller
    cuts longer windows with :func:`times.chunks`)."""
    return {"schedules": [address],
            "startTime": {"dateTime": utc_text(window.start)[:-1], "timeZone": "UTC"},
            "endTime": {"dateTime": utc_text(window.end)[:-1], "timeZone": "UTC"},
            "availabilityViewInterval": SCHEDULE_INTERVAL_MINUTES}
