"""Fixtures for bench/run_exchange_bench.py: an Exchange emulator (tests/emulators/exchange,
HTTPS with a test CA, NTLM) in the runner's process holding a 5,000-item calendar, and the
Calgate settings and credentials of a mailbox linked to it.

The calendar is a mix, as an Exchange user's would be, spread evenly over days -40 .. +194
from today (inside Calgate's sync window, as in the Google and Microsoft benches, for
comparison): of every 100 items, 1 is a weekly recurring master (repeating in
Europe/Berlin, no end) with one cancelled and one moved occurrence (an exception); 10 are
all-day events; the rest are 30-105 minute single events in Europe/Berlin with a body and a
location, every fifth with two attendees. Items are written straight into the emulator's
mailbox as the elements Outlook would have saved (the emulator keeps items as elements), so
filling it costs no EWS requests.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

FIRST_DAY = -40
SPAN_DAYS = 235
ZONE = ("Europe/Berlin", "W. Europe Standard Time")
PASSWORD = "Bench-Passw0rd!"


@dataclass(frozen=True, slots=True)
class Filled:
    """What :func:`fill` wrote: ids of single events, all-day events and masters."""

    singles: tuple[str, ...]
    all_day: tuple[str, ...]
    masters: tuple[str, ...]
    occurrences: int  # the masters' occurrences and exceptions inside the sync window


def _element(name: str, text: str | None = None, **attrs: str) -> ET.Element:
    from tests.emulators.exchange.soap import t

    element = ET.Element(t(name), attrs)
    element.text = text
    return element


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _attendees(i: int) -> dict[str, ET.Element]:
    from tests.emulators.exchange.soap import t

    found = {}
    for name, address in (("RequiredAttendees", f"guest{i}@example.org"),
                          ("OptionalAttendees", f"other{i}@example.org")):
        holder = _element(name)
        attendee = ET.SubElement(holder, t("Attendee"))
        mailbox = ET.SubElement(attendee, t("Mailbox"))
        ET.SubElement(mailbox, t("Name")).text = address.partition("@")[0].title()
        ET.SubElement(mailbox, t("EmailAddress")).text = address
        ET.SubElement(mailbox, t("RoutingType")).text = "SMTP"
        ET.SubElement(attendee, t("ResponseType")).text = "Unknown"
        found[name] = holder
    return found


def _fields(i: int, start: datetime, end: datetime, rnd: random.Random,
            all_day: bool) -> dict[str, ET.Element]:
    fields = {
        "Subject": _element("Subject", f"Meeting {i}"),
        "Body": _element("Body", f"Agenda for meeting {i}: " + "notes " * rnd.randrange(5, 30),
                         BodyType="Text"),
        "Start": _element("Start", _instant(start)), "End": _element("End", _instant(end)),
        "IsAllDayEvent": _element("IsAllDayEvent", "true" if all_day else "false"),
        "LegacyFreeBusyStatus": _element("LegacyFreeBusyStatus",
                                         "Free" if all_day else "Busy"),
        "Location": _element("Location", f"Room {rnd.randrange(1, 40)}")}
    if not all_day:
        for name in ("StartTimeZone", "EndTimeZone"):
            fields[name] = _element(name, Id=ZONE[1])
    return fields


def original(start: datetime, weeks: int) -> datetime:
    """The original start (UTC) of a series' occurrence ``weeks`` after its first: the
    pattern repeats in the series' zone, so across a DST change the UTC hour moves."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE[0])
    local = start.astimezone(zone).replace(tzinfo=None) + timedelta(weeks=weeks)
    return local.replace(tzinfo=zone).astimezone(UTC)


def _series(box: Any, item: Any, start: datetime) -> None:
    """The master repeats weekly; its third occurrence is cancelled and its fifth moved two
    hours later (an exception)."""
    from tests.emulators.exchange.mailbox import Series

    item.series = Series(ZONE[0])
    item.series.deleted.add(original(start, 2))
    moved = original(start, 4)
    item.series.moved[moved] = (moved + timedelta(hours=2), moved + timedelta(hours=3))
    box.update(item)


def fill(emu: Any, email: str, count: int, day0: datetime) -> Filled:
    """``count`` items in the mailbox's default calendar, oldest first."""
    rnd = random.Random(7)
    box = emu.mailbox(email)
    singles, all_day, masters = [], [], []
    with box.lock:
        for i in range(count):
            day = day0 + timedelta(days=FIRST_DAY + SPAN_DAYS * i / count)
            kind = "master" if i % 100 == 50 else "all_day" if i % 10 == 3 else "single"
            if kind == "all_day":
                start = day.replace(hour=0, minute=0, second=0, microsecond=0)
                end = start + timedelta(days=1 + i % 3)
            else:
                start = (day + timedelta(minutes=rnd.randrange(0, 600, 15))).replace(
                    second=0, microsecond=0)
                end = start + timedelta(minutes=rnd.choice((30, 45, 60, 90, 105)))
            fields = _fields(i, start, end, rnd, kind == "all_day")
            if kind == "single" and i % 5 == 0:
                fields.update(_attendees(i))
            item = box.create(box.calendar.folder_id, fields, {})
            if kind == "master":
                _series(box, item, start)
            {"master": masters, "all_day": all_day, "single": singles}[kind].append(
                item.item_id)
    return Filled(tuple(singles), tuple(all_day), tuple(masters),
                  occurrences(emu, email, masters))


def occurrences(emu: Any, email: str, masters: list[str]) -> int:
    """The masters' occurrences and exceptions inside the sync engine's default window."""
    from datetime import UTC

    from gateway.sync.engine import SyncSettings
    from tests.emulators.exchange.mailbox import expand

    window = SyncSettings().window(datetime.now(UTC))
    box = emu.mailbox(email)
    with box.lock:
        return sum(len(expand(item, item.series, window.start, window.end))
                   for item in (box.get(m) for m in masters) if item.series is not None)


def settings_env(data_dir: Path, emu: Any) -> dict[str, str]:
    return {"CALGATE_DATA_DIR": str(data_dir),
            "CALGATE_EXCHANGE_CA_BUNDLE": str(emu.ca.pem_path),
            # The emulator listens on loopback, which the outbound guard refuses unless
            # the operator allows it (as the e2e tests' gateway does).
            "CALGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
            "CALGATE_PUBLIC_URL": "http://127.0.0.1:8080", "CALGATE_LOG_LEVEL": "warning",
            "CALGATE_WORKER_MODE": "external", "CALGATE_PROVIDER_PUSH": "off"}


def credentials(emu: Any, email: str) -> dict[str, str]:
    """What the consent form keeps for the mailbox (the EWS URL given: no Autodiscover)."""
    return {"email": email, "password": PASSWORD, "ews_url": emu.ews_url(),
            "login": "CONTOSO\\" + email.partition("@")[0]}
