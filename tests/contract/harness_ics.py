"""Contract harness for the ICS feed provider: a real HTTP feed server on loopback whose
feed the harness rewrites as the calendar's owner (the feed's publisher) would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from providers.ics.provider import IcsFeedProvider
from providers.registry import ProviderOptions
from tests.support.feedserver import FeedServer
from tests.support.outbound import LOOPBACK

PATH = "/calendar.ics"
BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE
"""


def utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def single_event(uid: str, summary: str, start: datetime, duration: timedelta,
                 transparent: bool) -> str:
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:{utc(datetime.now(UTC))}\n"
            f"DTSTART:{utc(start)}\nDTEND:{utc(start + duration)}\nSUMMARY:{summary}\n"
            f"TRANSP:{'TRANSPARENT' if transparent else 'OPAQUE'}\nEND:VEVENT\n")


def weekly_series(uid: str) -> str:
    """Mondays 09:00 Europe/Berlin from 2027-03-01, without 03-08, 03-22 moved to 14:00."""
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\n"
            "DTSTART;TZID=Europe/Berlin:20270301T090000\n"
            "DTEND;TZID=Europe/Berlin:20270301T100000\n"
            "RRULE:FREQ=WEEKLY;BYDAY=MO\nEXDATE;TZID=Europe/Berlin:20270308T090000\n"
            "SUMMARY:Weekly\nEND:VEVENT\n"
            f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\n"
            "RECURRENCE-ID;TZID=Europe/Berlin:20270322T090000\n"
            "DTSTART;TZID=Europe/Berlin:20270322T140000\n"
            "DTEND;TZID=Europe/Berlin:20270322T150000\nSUMMARY:Weekly\nEND:VEVENT\n")


@dataclass
class IcsHarness:
    server: FeedServer
    provider: IcsFeedProvider
    calendar_id: str
    name: str = "ics"
    writable: bool = False
    events: dict[str, str] = field(default_factory=dict)  # uid -> its VEVENT text

    def publish(self) -> None:
        text = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Calgate tests//feed//EN\n"
                "X-WR-CALNAME:Contract feed\nX-WR-TIMEZONE:Europe/Berlin\n" + BERLIN
                + "".join(self.events.values()) + "END:VCALENDAR\n")
        self.server.set_feed(PATH, text.replace("\n", "\r\n"))

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1), transparent: bool = False) -> None:
        self.events[uid] = single_event(uid, summary, start, duration, transparent)
        self.publish()

    def upstream_rename(self, uid: str, summary: str) -> None:
        lines = self.events[uid].splitlines(keepends=True)
        self.events[uid] = "".join(f"SUMMARY:{summary}\n" if line.startswith("SUMMARY:")
                                   else line for line in lines)
        self.publish()

    def upstream_remove(self, uid: str) -> None:
        self.events.pop(uid, None)
        self.publish()

    def upstream_add_series(self, uid: str) -> None:
        self.events[uid] = weekly_series(uid)
        self.publish()


@contextmanager
def harness() -> Iterator[IcsHarness]:
    with FeedServer() as server:
        # The feed server is on loopback, which the SSRF guard refuses unless allowed.
        provider = IcsFeedProvider(server.url(PATH),
                                   ProviderOptions(timeout=10, outbound=LOOPBACK))
        h = IcsHarness(server, provider, provider.calendar_id)
        h.publish()
        yield h
