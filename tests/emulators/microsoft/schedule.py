"""``POST /me/calendar/getSchedule``: free/busy of mailboxes in the caller's tenant, as
``scheduleItems`` and an ``availabilityView`` string (0 free, 1 tentative, 2 busy, 3 oof,
4 working elsewhere). Personal accounts cannot call it: Graph answers them with an error."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .errors import GraphError, invalid
from .events import Events
from .state import User, World
from .timeutil import parse_when, write_when

_RANK = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}


def get_schedule(world: World, caller: User, body: dict[str, Any], tz: str) -> dict[str, Any]:
    if caller.personal:
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. getSchedule is not "
                         "supported for personal Microsoft accounts (MSA).")
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise invalid("schedules is required.")
    lo, _ = parse_when(body.get("startTime"))
    hi, _ = parse_when(body.get("endTime"))
    if hi <= lo:
        raise invalid("The end time must be after the start time.")
    interval = timedelta(minutes=int(body.get("availabilityViewInterval") or 30))
    values = [_one(world, caller, str(s), lo, hi, interval, tz) for s in schedules]
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection("
                              "microsoft.graph.scheduleInformation)", "value": values}


def _one(world: World, caller: User, address: str, lo: datetime, hi: datetime,
         interval: timedelta, tz: str) -> dict[str, Any]:
    user = world.users.get(address.lower())
    if user is None or user.personal or user.tenant != caller.tenant:
        return {"scheduleId": address, "error": {
            "message": f"Unable to resolve e-mail address {address} to an Active Directory "
                       "object.", "responseCode": "5009"}}
    box = world.mailbox(user.email)
    items = [e for e in Events(world, box).window(box.default(), lo, hi)
             if e.resource.get("showAs", "busy") != "free"]
    view, slot = [], lo
    while slot < hi:
        end = slot + interval
        ranks = [_RANK.get(str(e.resource.get("showAs", "busy")), "2") for e in items
                 if e.start < end and e.end > slot]
        view.append(max(ranks, default="0"))
        slot = end
    return {"scheduleId": address, "availabilityView": "".join(view),
            "scheduleItems": [{"isPrivate": e.resource.get("sensitivity") == "private",
                               "status": e.resource.get("showAs", "busy"),
                               "subject": e.resource.get("subject", ""),
                               "location": (e.resource.get("location") or {}).get(
                                   "displayName", ""),
                               "isMeeting": bool(e.resource.get("attendees")),
                               "isRecurring": e.resource.get("type") != "singleInstance",
                               "isException": e.resource.get("type") == "exception",
                               "isReminderSet": False,
                               "start": write_when(e.start, tz), "end": write_when(e.end, tz)}
                              for e in items],
            "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday",
                                            "friday"], "startTime": "08:00:00.0000000",
                             "endTime": "17:00:00.0000000",
                             "timeZone": {"name": user.tz}}}
