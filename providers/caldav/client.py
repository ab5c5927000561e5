"""Wire calls to one CalDAV account, through caldav's ``DAVClient`` (blocking: the provider
runs every method here in a worker thread).

``DAVClient.request`` gives us HTTP auth negotiation (Basic/Digest/Bearer), caldav's
401/403 and rate-limit exceptions and its multistatus parser; the request bodies are ours
(:mod:`.davxml`), so each operation is one request we can reason about, with the
conditional headers (``If-Match``, ``If-None-Match``) that idempotent writes need. Results
are plain typed values; ``Any`` stops here.

Negotiation costs a 401 round trip per connection, so Basic credentials are sent up front
where that gives nothing away: over TLS, or where the server took Basic before (the sync
cursor remembers the scheme). A 401 to such a guess drops it and negotiates as usual, so
a server that wants Digest still gets Digest.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error
from caldav.response import DAVResponse, SyncCollectionResult

from ..errors import CursorExpired, InvalidInput, NotCalendarServer
from ..outbound import OutboundPolicy
from ..outbound.niquests_session import GuardedSession
from . import davxml
from .errors import from_status, translated

MULTIGET_BATCH = 100  # hrefs per calendar-multiget REPORT
SYNC_MAX_PAGES = 50  # RFC 6578 s3.6: follow truncated replies this often at most
XML = {"Content-Type": "application/xml; charset=utf-8"}  # Xandikos answers 415 without it
VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"  # noqa: S105 (an XML element name)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How to reach the account; built once from the stored credentials."""

    url: str
    username: str
    password: str
    timeout: float = 20.0
    user_agent: str = "Calgate"
    ca_bundle: str = ""  # PEM text of a private CA to trust (never: verification off)
    # Every connection goes through the outbound guard with this policy.
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)


@dataclass(frozen=True, slots=True)
class Principal:
    principal_url: str
    home_url: str
    addresses: tuple[str, ...]  # calendar-user addresses (lowercased, without mailto:)
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class CollectionProps:
    """One collection's properties, from a PROPFIND."""

    path: str
    is_calendar: bool
    name: str | None = None
    color: str | None = None
    timezone: str | None = None  # calendar-timezone: a VCALENDAR holding one VTIMEZONE
    timezone_id: str | None = None  # calendar-timezone-id (RFC 7809)
    privileges: frozenset[str] | None = None  # None: the server does not say
    reports: frozenset[str] = frozenset()
    components: frozenset[str] | None = None
    ctag: str | None = None
    sync_token: str | None = None


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A calendar object resource as stored upstream."""

    path: str
    etag: str | None
    data: str


@dataclass(frozen=True, slots=True)
class SyncReply:
    """A complete sync-collection answer (truncated pages followed)."""

    token: str
    changed: dict[str, str | None]  # member path -> etag
    deleted: tuple[str, ...]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def _collection(path: str, props: Mapping[str, Any]) -> CollectionProps:
    privileges = props.get("{DAV:}current-user-privilege-set")
    components = props.get(f"{{{davxml.CALDAV}}}supported-calendar-component-set")
    return CollectionProps(
        path=path,
        is_calendar=f"{{{davxml.CALDAV}}}calendar" in _names(props.get("{DAV:}resourcetype")),
        name=_text(props.get("{DAV:}displayname")),
        color=_text(props.get(f"{{{davxml.APPLE}}}calendar-color")),
        timezone=_text(props.get(f"{{{davxml.CALDAV}}}calendar-timezone")),
        timezone_id=_text(props.get(f"{{{davxml.CALDAV}}}calendar-timezone-id")),
        privileges=None if privileges is None else _names(privileges),
        reports=_names(props.get("{DAV:}supported-report-set")),
        components=None if components is None else _names(components),
        ctag=_text(props.get(f"{{{davxml.CALSERVER}}}getctag")),
        sync_token=_text(props.get("{DAV:}sync-token")),
    )


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class CalDavClient:
    """The wire calls Calgate makes to one CalDAV account. Blocking; thread-safe (one call
    at a time: caldav's client negotiates auth by mutating itself)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.host = urlsplit(settings.url).hostname or settings.url
        self._lock = threading.RLock()
        self._dav: DAVClient | None = None
        self._ca_path: str | None = None
        self._ca_cleanup: weakref.finalize[[str], CalDavClient] | None = None
        self._principal: Principal | None = None
        self._basic_known = False  # the server took Basic before: send it up front
        self._guessed = False  # the live DAVClient sends Basic without being asked

    # -- connection -------------------------------------------------------------------

    def _verify(self) -> bool | str:
        if not self.settings.ca_bundle:
            return True
        if self._ca_path is None:
            handle, self._ca_path = tempfile.mkstemp(prefix="calgate-ca-", suffix=".pem")
            with os.fdopen(handle, "w") as pem:
                pem.write(self.settings.ca_bundle)
            # Removed on close(), or when a client that was never closed is collected.
            self._ca_cleanup = weakref.finalize(self, _remove, self._ca_path)
        return self._ca_path

    def _client(self, url: str | None = None) -> DAVClient:
        if self._dav is None or url is not None:
            if self._dav is not None:
                self._dav.close()
            # The URL always has a path (presets.server_url), so caldav does no RFC 6764
            # lookups of its own: those would reach hosts the guard never saw.
            self._dav = DAVClient(
                url=url or self.settings.url, username=self.settings.username or None,
                password=self.settings.password or None,
                timeout=max(1, round(self.settings.timeout)),
                ssl_verify_cert=self._verify(),
                headers={"User-Agent": self.settings.user_agent},
                enable_rfc6764=False,
                rate_limit_handle=False)  # never sleep in a worker: raise RateLimited
            # Every request, redirects included, through the outbound guard.
            self._dav.session.close()
            self._dav.session = GuardedSession(self.settings.policy)
            self._guessed = False
            self._guess_basic(self._dav)
        return self._dav

    def _guess_basic(self, dav: DAVClient) -> None:
        """Send Basic credentials with the first request instead of waiting for a 401,
        over TLS or where the server took Basic before (never a bearer token: no user)."""
        if dav.auth is not None or not (self.settings.username and self.settings.password):
            return
        if self._basic_known or urlsplit(str(dav.url)).scheme == "https":
            dav.auth_type = "basic"
            dav.build_auth_object()
            self._guessed = True

    def remember_auth(self, scheme: str | None) -> None:
        """What :attr:`auth_scheme` said in an earlier session (from the sync cursor)."""
        with self._lock:
            if scheme == "basic" and not self._basic_known:
                self._basic_known = True
                if self._dav is not None:
                    self._guess_basic(self._dav)

    @property
    def auth_scheme(self) -> str | None:
        """The HTTP auth scheme in use: "basic", "digest", "bearer", or None."""
        with self._lock:
            auth = self._dav.auth if self._dav is not None else None
        name = type(auth).__name__ if auth is not None else ""
        return {"HTTPBasicAuth": "basic", "HTTPDigestAuth": "digest",
                "HTTPBearerAuth": "bearer"}.get(name)

    @property
    def known_principal(self) -> Principal | None:
        """The principal if this client looked it up already (no request)."""
        return self._principal

    @contextmanager
    def _session(self, what: str) -> Iterator[DAVClient]:
        with self._lock, translated(self.host, what):
            yield self._client()

    def _request(self, dav: DAVClient, url: str, method: str, body: str = "",
                 headers: Mapping[str, str] | None = None) -> DAVResponse:
        try:
            response: DAVResponse = dav.request(url, method, body, dict(headers or {}))
        except caldav_error.AuthorizationError as exc:
            if not self._guessed or exc.status != 401:
                raise
            # The Basic guess was refused (the password changed, or the server wants
            # Digest now): forget it and let caldav negotiate from the server's 401.
            self._guessed = self._basic_known = False
            dav.auth = None
            dav.auth_type = None
            response = dav.request(url, method, body, dict(headers or {}))
        return response

    def _expect(self, response: DAVResponse, what: str, ok: Sequence[int] = (200, 207)) -> None:
        if response.status not in ok:
            raise from_status(response.status, host=self.host, what=what)

    def close(self) -> None:
        with self._lock:
            if self._dav is not None:
                self._dav.close()
                self._dav = None
            if self._ca_cleanup is not None:
                self._ca_cleanup()
                self._ca_cleanup = self._ca_path = None

    # -- discovery --------------------------------------------------------------------

    def principal(self) -> Principal:
        """current-user-principal (RFC 5397), then its calendar home (RFC 4791 s6.2.1)."""
        with self._session("principal lookup") as dav:
            if self._principal is None:
                self._principal = self._discover(dav)
            return self._principal

    def _discover(self, dav: DAVClient) -> Principal:
        start = str(dav.url)
        found = self._propfind_one(dav, start, davxml.PRINCIPAL_PROPS, tolerant=True)
        href = _text(found.get("{DAV:}current-user-principal"))
        parts = urlsplit(start)
        if href is None and parts.path in ("", "/"):
            # Nothing at the root: RFC 6764 s5's well-known URI (its redirect is followed
            # through the guard, on the same origin only).
            dav = self._client(urljoin(start, "/.well-known/caldav"))
            start = str(dav.url)
            # A web server that is no CalDAV server answers this with 404, 405 or 501 too.
            found = self._propfind_one(dav, start, davxml.PRINCIPAL_PROPS, tolerant=True)
            href = _text(found.get("{DAV:}current-user-principal"))
        if href is None:
            raise NotCalendarServer(f"{self.host} names no current-user-principal: not a "
                                    "CalDAV server, or not this URL")
        principal_url = urljoin(start, href)
        if principal_url.rstrip("/") != start.rstrip("/"):
            found = self._propfind_one(dav, principal_url, davxml.PRINCIPAL_PROPS)
        home = found.get(f"{{{davxml.CALDAV}}}calendar-home-set")
        home_href = home[0] if isinstance(home, list) and home else home
        if not isinstance(home_href, str):
            raise InvalidInput(f"{self.host} names no calendar-home-set for this account")
        addresses = found.get(f"{{{davxml.CALDAV}}}calendar-user-address-set") or []
        return Principal(principal_url, urljoin(principal_url, home_href), tuple(sorted(
            unquote(a[7:]).lower() for a in _names(addresses) if a.lower().startswith("mailto:")
        )), _text(found.get("{DAV:}displayname")))

    def _propfind_one(self, dav: DAVClient, url: str, props: Sequence[str],
                      tolerant: bool = False) -> dict[str, Any]:
        """One resource's properties; ``tolerant``: {} where the server has nothing (a
        404 or 405 at a server's root is no error while looking for the principal)."""
        response = self._request(dav, url, "PROPFIND", davxml.propfind(props),
                                 {"Depth": "0", **XML})
        if tolerant and response.status in (400, 404, 405, 501):
            return {}
        self._expect(response, "principal lookup")
        results = response.parse_propfind()
        return dict(results[0].properties) if results else {}

    # -- collections ------------------------------------------------------------------

    def collections(self, url: str, depth: int = 1) -> list[CollectionProps]:
        """The collection at ``url`` (depth 0) or its children too (depth 1)."""
        with self._session("calendar listing") as dav:
            response = self._request(dav, url, "PROPFIND",
                                     davxml.propfind(davxml.COLLECTION_PROPS),
                                     {"Depth": str(depth), **XML})
            self._expect(response, "calendar listing")
            if response.all_responses_not_found():  # Xandikos: a 207 of 404s for a gone URL
                raise from_status(404, host=self.host, what="calendar listing")
            return [_collection(r.href, r.properties) for r in response.parse_propfind()
                    if r.status == 200]

    def make_calendar(self, url: str, name: str, color: str | None) -> None:
        with self._session("calendar creation") as dav:
            response = self._request(dav, url, "MKCALENDAR", davxml.mkcalendar(name, color),
                                     XML)
            if response.status == 405:  # RFC 4791 s5.3.1.2: something exists there already
                raise from_status(409, host=self.host, what="calendar creation")
            self._expect(response, "calendar creation", (200, 201, 204))

    # -- reading objects --------------------------------------------------------------

    def member_etags(self, url: str) -> dict[str, str | None]:
        """Every calendar object in the collection with its ETag (PROPFIND depth 1)."""
        with self._session("listing events") as dav:
            response = self._request(dav, url, "PROPFIND", davxml.propfind(davxml.ETAG_PROPS),
                                     {"Depth": "1", **XML})
            self._expect(response, "listing events")
            base = urlsplit(url).path.rstrip("/")
            return {r.href: _text(r.properties.get("{DAV:}getetag"))
                    for r in response.parse_propfind()
                    if r.status == 200 and r.href.rstrip("/") != base
                    and "{DAV:}collection" not in _names(r.properties.get("{DAV:}resourcetype"))}

    def sync_collection(self, url: str, token: str) -> SyncReply:
        """sync-collection (RFC 6578); raises CursorExpired when the token is refused."""
        changed: dict[str, str | None] = {}
        deleted: dict[str, None] = {}
        with self._session("sync-collection") as dav:
            for _page in range(SYNC_MAX_PAGES):
                reply = self._sync_page(dav, url, token)
                for path in reply.deleted:
                    changed.pop(path, None)
                    deleted[path] = None
                for entry in reply.changed:
                    deleted.pop(entry.href, None)
                    changed[entry.href] = entry.etag
                again = reply.truncated and bool(reply.sync_token) and reply.sync_token != token
                token = reply.sync_token or token
                if not again:
                    break
        return SyncReply(token, changed, tuple(deleted))

    def _sync_page(self, dav: DAVClient, url: str, token: str) -> SyncCollectionResult:
        try:
            response = self._request(dav, url, "REPORT", davxml.sync_collection(token),
                                     {"Depth": "0", **XML})
        except caldav_error.DAVError as exc:
            if VALID_SYNC_TOKEN in exc.preconditions:  # Radicale: 403 valid-sync-token
                raise CursorExpired("the server no longer accepts this sync token") from exc
            raise
        if token and response.status in (403, 409, 412):  # Xandikos: 412 for a bad token
            raise CursorExpired(f"the server refused the sync token (HTTP {response.status})")
        self._expect(response, "sync-collection")
        return response.parse_sync_collection()

    def multiget(self, url: str, paths: Sequence[str]) -> list[StoredObject]:
        """The data of the given members (calendar-multiget); members gone meanwhile are
        left out."""
        found: list[StoredObject] = []
        with self._session("reading events") as dav:
            for at in range(0, len(paths), MULTIGET_BATCH):
                body = davxml.calendar_multiget(paths[at:at + MULTIGET_BATCH])
                response = self._request(dav, url, "REPORT", body, XML)
                self._expect(response, "reading events")
                found += self._objects(response)
        return found

    def find_by_uid(self, url: str, uid: str) -> StoredObject | None:
        with self._session("finding an event") as dav:
            response = self._request(dav, url, "REPORT", davxml.query_by_uid(uid),
                                     {"Depth": "1", **XML})
            self._expect(response, "finding an event")
            objects = self._objects(response)
        return objects[0] if objects else None

    def query_range(self, url: str, start: datetime, end: datetime) -> list[StoredObject]:
        with self._session("reading events") as dav:
            response = self._request(dav, url, "REPORT", davxml.query_time_range(start, end),
                                     {"Depth": "1", **XML})
            self._expect(response, "reading events")
            return self._objects(response)

    @staticmethod
    def _objects(response: DAVResponse) -> list[StoredObject]:
        return [StoredObject(r.href, r.etag, r.calendar_data)
                for r in response.parse_calendar_query()
                if r.status == 200 and r.calendar_data]

    def get(self, url: str) -> StoredObject | None:
        with self._session("reading an event") as dav:
            response = self._request(dav, url, "GET")
            if response.status in (404, 410):
                return None
            self._expect(response, "reading an event", (200,))
            return StoredObject(urlsplit(url).path, response.headers.get("ETag"), response.raw)

    def free_busy(self, url: str, start: datetime, end: datetime) -> str:
        """A VFREEBUSY for the calendar (free-busy-query REPORT, RFC 4791 s7.10)."""
        with self._session("free/busy query") as dav:
            response = self._request(dav, url, "REPORT", davxml.free_busy_query(start, end),
                                     {"Depth": "1", **XML})
            self._expect(response, "free/busy query", (200,))
            return response.raw

    # -- writing objects --------------------------------------------------------------

    def put(self, url: str, data: str, *, if_match: str | None = None,
            create_only: bool = False) -> str | None:
        """Store an object; 412 raises PreconditionFailed. Returns the new ETag if given."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if create_only:
            headers["If-None-Match"] = "*"
        elif if_match:
            headers["If-Match"] = if_match
        with self._session("writing an event") as dav:
            response = self._request(dav, url, "PUT", data, headers)
            self._expect(response, "writing an event", (200, 201, 204))
            etag = response.headers.get("ETag")
            return etag if isinstance(etag, str) and not etag.startswith("W/") else None

    def delete(self, url: str, if_match: str | None = None) -> None:
        """Delete an object; one already gone is fine, a stale ``if_match`` is a Conflict."""
        with self._session("deleting an event") as dav:
            response = self._request(dav, url, "DELETE", "",
                                     {"If-Match": if_match} if if_match else {})
            if response.status in (404, 410):
                return
            self._expect(response, "deleting an event", (200, 202, 204))
