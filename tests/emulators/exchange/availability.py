"""GetUserAvailability (free/busy from each mailbox's default calendar) and
GetServerTimeZones (a one-period definition is all exchangelib needs)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .mailbox import Mailbox, expand
from .soap import M, T, envelope, m, ok, response, t

_HEADER = f'<m:GetUserAvailabilityResponse xmlns="{M}">'


def _bias(op: ET.Element) -> timedelta:
    # local = UTC - bias (minutes); the standard bias only: the emulator ignores DST.
    return timedelta(minutes=int(op.findtext(f"{t('TimeZone')}/{t('Bias')}") or "0"))


def _busy_type(status: str) -> str:
    return status if status in ("Free", "Tentative", "Busy", "OOF") else "Busy"


def _instant(element: ET.Element, name: str) -> datetime:
    return datetime.fromisoformat((element.findtext(t(name)) or "").replace("Z", "+00:00"))


def _events(box: Mailbox, start: datetime, end: datetime, bias: timedelta) -> str:
    """The default calendar's busy times in the window: a series by its occurrences (moved
    ones at their new time, cancelled ones absent), as Exchange expands it."""
    found = []
    for item in box.items.values():
        if item.folder_id != box.calendar.folder_id:
            continue
        shown = (expand(item, item.series, start, end) if item.series is not None
                 else [item.element()])
        for element in shown:
            begin, finish = _instant(element, "Start"), _instant(element, "End")
            if not (begin < end and finish > start):
                continue
            status = _busy_type(element.findtext(t("LegacyFreeBusyStatus")) or "Busy")
            local = [(v - bias).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
                     for v in (begin, finish)]
            found.append(f"<t:CalendarEvent><t:StartTime>{local[0]}</t:StartTime>"
                         f"<t:EndTime>{local[1]}</t:EndTime><t:BusyType>{status}"
                         "</t:BusyType></t:CalendarEvent>")
    return "".join(found)


def get_user_availability(op: ET.Element, directory: Callable[[str], Mailbox | None]
                          ) -> bytes:
    bias = _bias(op)
    window = op.find(f"{t('FreeBusyViewOptions')}/{t('TimeWindow')}")
    assert window is not None
    start, end = ((datetime.fromisoformat(window.findtext(t(n)) or "") + bias
                   ).replace(tzinfo=UTC) for n in ("StartTime", "EndTime"))
    answers = []
    for data in op.iterfind(f"{m('MailboxDataArray')}/{t('MailboxData')}"):
        address = data.findtext(f"{t('Email')}/{t('Address')}") or ""
        box = directory(address)
        if box is None:
            answers.append('<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Error">'
                           "<m:MessageText>No mailbox with such a guid.</m:MessageText>"
                           "<m:ResponseCode>ErrorMailRecipientNotFound</m:ResponseCode>"
                           "</m:ResponseMessage></m:FreeBusyResponse>")
            continue
        answers.append('<m:FreeBusyResponse><m:ResponseMessage ResponseClass="Success">'
                       "<m:ResponseCode>NoError</m:ResponseCode></m:ResponseMessage>"
                       "<m:FreeBusyView><t:FreeBusyViewType>FreeBusy</t:FreeBusyViewType>"
                       f"<t:CalendarEventArray>{_events(box, start, end, bias)}"
                       "</t:CalendarEventArray></m:FreeBusyView></m:FreeBusyResponse>")
    body = (f"{_HEADER}<m:FreeBusyResponseArray>{''.join(answers)}"
            "</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>")
    return envelope(body.replace(f' xmlns="{M}"', "").replace("{T}", T))


def get_server_time_zones(op: ET.Element) -> bytes:
    zones = []
    for tzid in (e.text or "" for e in op.iter(t("Id"))):
        if not re.fullmatch(r"[\w .+()-]+", tzid):
            continue
        period = f"trule:Microsoft/Registry/{tzid}/1-Standard"
        zones.append(f'<t:TimeZoneDefinition Id="{tzid}" Name="{tzid}"><t:Periods>'
                     f'<t:Period Bias="PT0M" Name="Standard" Id="{period}"/></t:Periods>'
                     '<t:TransitionsGroups><t:TransitionsGroup Id="0"><t:Transition>'
                     f'<t:To Kind="Period">{period}</t:To></t:Transition></t:TransitionsGroup>'
                     "</t:TransitionsGroups><t:Transitions><t:Transition>"
                     '<t:To Kind="Group">0</t:To></t:Transition></t:Transitions>'
                     "</t:TimeZoneDefinition>")
    inner = f"<m:TimeZoneDefinitions>{''.join(zones)}</m:TimeZoneDefinitions>"
    return response("GetServerTimeZones", [ok("GetServerTimeZones", inner)])
