"""WebDAV/CalDAV request bodies, built by pure functions (responses are parsed by caldav's
``DAVResponse``). Section numbers are RFC 4918 (WebDAV), RFC 4791 (CalDAV), RFC 6578
(sync-collection), RFC 3744 (ACL) and RFC 6638 (scheduling)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"

_NAMESPACES = (f'xmlns:D="{DAV}" xmlns:C="{CALDAV}" xmlns:CS="{CALSERVER}" '
               f'xmlns:A="{APPLE}"')
_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'

# Properties read from a principal (RFC 5397 current-user-principal, RFC 4791 s6.2.1
# calendar-home-set, RFC 6638 s2.4.1 calendar-user-address-set).
PRINCIPAL_PROPS = ("D:current-user-principal", "C:calendar-home-set",
                   "C:calendar-user-address-set", "D:displayname", "D:resourcetype")
# Properties read from a calendar collection.
COLLECTION_PROPS = ("D:resourcetype", "D:displayname", "A:calendar-color",
                    "C:calendar-timezone", "C:calendar-timezone-id",
                    "D:current-user-privilege-set", "D:supported-report-set",
                    "C:supported-calendar-component-set", "CS:getctag", "D:sync-token")
ETAG_PROPS = ("D:getetag", "D:resourcetype")


def href_path(path: str) -> str:
    """A path as an href: percent-encoded except for RFC 3986 path characters."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def propfind(props: Iterable[str]) -> str:
    """PROPFIND for the named properties (RFC 4918 s9.1)."""
    body = "".join(f"<{p}/>" for p in props)
    return f"{_HEAD}<D:propfind {_NAMESPACES}><D:prop>{body}</D:prop></D:propfind>"


def sync_collection(token: str) -> str:
    """sync-collection REPORT (RFC 6578 s3.2); an empty token asks for every member."""
    return (f"{_HEAD}<D:sync-collection {_NAMESPACES}>"
            f"<D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>")


def calendar_multiget(paths: Iterable[str]) -> str:
    """calendar-multiget REPORT (RFC 4791 s7.9) for members given by path."""
    hrefs = "".join(f"<D:href>{escape(href_path(p))}</D:href>" for p in paths)
    return (f"{_HEAD}<C:calendar-multiget {_NAMESPACES}>"
            f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>")


def _utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def query_by_uid(uid: str) -> str:
    """calendar-query REPORT (RFC 4791 s7.8) for the VEVENT object with this UID."""
    match = f'<C:text-match collation="i;octet">{escape(uid)}</C:text-match>'
    return (f"{_HEAD}<C:calendar-query {_NAMESPACES}>"
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:prop-filter name="UID">{match}</C:prop-filter>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")


def query_time_range(start: datetime, end: datetime) -> str:
    """calendar-query REPORT for VEVENT objects with an instance in [start, end)."""
    time_range = f'<C:time-range start="{_utc_stamp(start)}" end="{_utc_stamp(end)}"/>'
    return (f"{_HEAD}<C:calendar-query {_NAMESPACES}>"
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f"{time_range}</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")


def free_busy_query(start: datetime, end: datetime) -> str:
    """free-busy-query REPORT (RFC 4791 s7.10)."""
    return (f"{_HEAD}<C:free-busy-query {_NAMESPACES}>"
            f'<C:time-range start="{_utc_stamp(start)}" end="{_utc_stamp(end)}"/>'
            "</C:free-busy-query>")


def mkcalendar(name: str, color: str | None) -> str:
    """MKCALENDAR (RFC 4791 s5.3.1) for an event calendar with a name and colour."""
    colour = f"<A:calendar-color>{escape(color)}</A:calendar-color>" if color else ""
    return (f"{_HEAD}<C:mkcalendar {_NAMESPACES}><D:set><D:prop>"
            f"<D:displayname>{escape(name)}</D:displayname>{colour}"
            '<C:supported-calendar-component-set><C:comp name="VEVENT"/>'
            "</C:supported-calendar-component-set>"
            "</D:prop></D:set></C:mkcalendar>")
