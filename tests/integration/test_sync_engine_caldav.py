"""The sync engine against real Radicale and Xandikos servers, counting what goes upstream.

Every request passes through a small reverse proxy on loopback that records it (method,
path, Depth, status, auth scheme) before forwarding it to the server, so the counts are
what the server really received. Issue 3's target: an incremental sync after one upstream
change makes at most 3 requests. Also here: the calendar list's own cadence (added,
renamed and removed calendars), and HTTP auth sent up front without losing Digest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from caldav.elements import dav
from sqlalchemy import select, update

from gateway.domain.sealing import DataKeys, unseal
from gateway.persistence.tables import calendars, events, profiles
from gateway.services.accounts import PendingAccount
from gateway.sync.engine import SyncEngine, SyncSettings
from providers.caldav.provider import open_account
from providers.errors import Unauthorized
from providers.registry import ProviderOptions
from tests.contract.harness import WINDOW
from tests.support import aio
from tests.support.davservers import DavOwner, shared_radicale, shared_xandikos
from tests.support.outbound import LOOPBACK, LOOPBACK_NETWORKS

LOOPBACK = ProviderOptions(timeout=10, outbound=LOOPBACK)
SCOPE = ["read_events", "list_calendars"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
              "proxy-connection", "te", "trailer", "upgrade"}
REALM = "calgate-test"


# -- a counting (and optionally Digest-demanding) reverse proxy --------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    depth: str | None
    status: int
    auth: str | None  # the scheme of the Authorization header sent, if any


class CountingProxy:
    """Forwards every request to ``upstream`` and records it in :attr:`seen`. With
    ``digest_users`` it demands HTTP Digest (RFC 7616, MD5, qop=auth) itself, answering
    401 to anything else, and forwards the request without credentials."""

    def __init__(self, upstream: str, digest_users: dict[str, str] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.prefix = parts.path
        self.digest_users = dict(digest_users or {})
        self.nonce = secrets.token_hex(16)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def take(self) -> list[Seen]:
        """What was seen since the last call."""
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    def challenge(self) -> str:
        return f'Digest realm="{REALM}", nonce="{self.nonce}", qop="auth", algorithm=MD5'

    def digest_ok(self, method: str, header: str) -> bool:
        if not header.lower().startswith("digest "):
            return False
        fields = {k: q or b for k, q, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]*))',
                                                      header[7:])}
        password = self.digest_users.get(fields.get("username", ""))
        if password is None or fields.get("nonce") != self.nonce:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()  # RFC 7616's MD5

        ha1 = md5(f"{fields['username']}:{REALM}:{password}")
        ha2 = md5(f"{method}:{fields.get('uri', '')}")
        expected = md5(f"{ha1}:{self.nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}"
                       f":{fields.get('qop', '')}:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server would

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        proxy: CountingProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization", "")
        scheme = authorization.split(" ", 1)[0].lower() or None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if proxy.digest_users:
            if not proxy.digest_ok(self.command, authorization):
                self._answer(401, [("WWW-Authenticate", proxy.challenge())], b"")
                proxy.record(Seen(self.command, self.path, self.headers.get("Depth"), 401,
                                  scheme))
                return
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            upstream.close()
        proxy.record(Seen(self.command, self.path, self.headers.get("Depth"), response.status,
                          scheme))
        self._answer(response.status, kept, data)

    def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = _forward
    do_PROPFIND = do_PROPPATCH = do_REPORT = do_MKCALENDAR = do_MKCOL = do_MOVE = _forward


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def settings(settings):
    # the servers listen on loopback
    return settings.replace(outbound_allow_networks=LOOPBACK_NETWORKS)


@dataclass
class Linked:
    profile_id: str
    subject: str
    proxy: CountingProxy
    owner: DavOwner
    calendar: str  # the first calendar's path upstream


def server_for(kind: str) -> tuple[str, str, str]:
    """(URL, user name, password) of a shared test server."""
    if kind == "radicale":
        return shared_radicale().url, "alice", "secret"
    return shared_xandikos().url, "", ""


@pytest.fixture
def link(gateway) -> Iterator[Any]:
    """link(kind, **credentials): a fresh calendar on the shared ``kind`` server, a proxy
    in front of that server, and a profile linked through the proxy."""
    made: list[tuple[CountingProxy, DavOwner, set[str]]] = []

    def make(kind: str = "radicale", digest: bool = False, **extra: str) -> Linked:
        url, username, password = server_for(kind)
        owner = DavOwner(url, username or None, password or None)
        before = {str(c.url) for c in owner.principal.calendars()}
        calendar = owner.make_calendar("Work")
        proxy = CountingProxy(url, {"alice": "secret"} if digest else None).__enter__()
        made.append((proxy, owner, before))
        if digest:
            username, password = "alice", "secret"
        credentials = {"server_url": proxy.url, "username": username, "password": password,
                       **extra}
        parked = gateway.accounts.park_credentials(uuid.uuid4().hex, credentials)
        linked = gateway.accounts.link("cli_x", PendingAccount(
            "caldav", "caldav", username or "owner", f"{url}|{uuid.uuid4().hex}", parked),
            None, SCOPE)
        return Linked(linked.profile_id, linked.subject, proxy, owner, calendar)

    make.made = made  # type: ignore[attr-defined]
    yield make
    for proxy, owner, before in made:  # the calendars the test made go again
        proxy.__exit__()
        for calendar in owner.principal.calendars():
            if str(calendar.url) not in before:
                calendar.delete()
        owner.close()


def engine(gateway, list_interval: float = 3600.0) -> SyncEngine:
    return SyncEngine(gateway.engine, gateway.secrets, DataKeys(gateway.engine, gateway.secrets),
                      SyncSettings(calendar_list_interval=list_interval), LOOPBACK)


def sync(gateway, profile_id: str, list_interval: float = 3600.0) -> int:
    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(next_sync_at=datetime.now(UTC)))
    outcome = aio.run(engine(gateway, list_interval).sync_profile(profile_id))
    assert outcome.ran and outcome.error is None, outcome
    return outcome.changed


def soon(days: int, hour: int = 9) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0,
                                                              microsecond=0)


def summaries(gateway, linked: Linked) -> dict[str, set[str]]:
    """Live mirror rows: calendar name -> the events' summaries."""
    key = DataKeys(gateway.engine, gateway.secrets).key(linked.subject)
    with gateway.engine.connect() as conn:
        cals = conn.execute(select(calendars).where(
            calendars.c.profile_id == linked.profile_id, calendars.c.deleted.is_(False))).all()
        found: dict[str, set[str]] = {}
        for cal in cals:
            found[cal.name] = {
                unseal(key, r.sealed, f"{cal.id}|{r.resource_id}")["summary"]
                for r in conn.execute(select(events).where(
                    events.c.calendar_id == cal.id, events.c.deleted.is_(False))).all()}
    return found


def age_listing(gateway, profile_id: str, seconds: float) -> None:
    with gateway.engine.begin() as conn:
        listed = conn.execute(select(profiles.c.calendars_listed_at).where(
            profiles.c.id == profile_id)).scalar_one()
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(calendars_listed_at=listed - timedelta(seconds=seconds)))


def methods(seen: list[Seen]) -> list[str]:
    return [f"{s.method} {s.depth or '-'} {s.status}" for s in seen]


# -- issue 3: requests per incremental sync ----------------------------------------------


@pytest.mark.parametrize(("kind", "mode", "expected"), [
    ("radicale", "auto", ["REPORT 0 207", "REPORT - 207"]),  # sync-collection, multiget
    ("xandikos", "auto", ["REPORT 0 207", "REPORT - 207"]),
    ("radicale", "ctag", ["PROPFIND 0 207", "PROPFIND 1 207", "REPORT - 207"]),
])
def test_steady_state_incremental_sync_makes_at_most_three_requests(gateway, link, kind, mode,
                                                                     expected):
    linked = link(kind, sync=mode)
    for n in range(5):
        linked.owner.add(linked.calendar, f"ev{n}", f"Event {n}", soon(n + 1))
    assert sync(gateway, linked.profile_id) == 5
    first = linked.proxy.take()
    assert any(s.method == "PROPFIND" and s.depth == "1" for s in first)  # listed
    # Xandikos's account has a default calendar too: one quiet request for it each time.
    others = len(summaries(gateway, linked)) - 1
    quiet = "REPORT 0 207" if mode == "auto" else "PROPFIND 0 207"

    assert sync(gateway, linked.profile_id) == 0  # nothing changed: one request a calendar
    assert methods(linked.proxy.take()) == [quiet] * (1 + others)

    linked.owner.rename(linked.calendar, "ev3", "Event 3 (moved)")
    assert sync(gateway, linked.profile_id) == 1
    seen = linked.proxy.take()
    mine = [s for s in seen if s.path.startswith(linked.calendar)]
    assert len(mine) <= 3 and methods(mine) == expected
    assert methods([s for s in seen if s not in mine]) == [quiet] * others
    if kind == "radicale":  # Basic credentials went with the first request: no 401
        assert all(s.auth == "basic" for s in seen)
    assert summaries(gateway, linked)["Work"] == {"Event 0", "Event 1", "Event 2",
                                                  "Event 3 (moved)", "Event 4"}

    linked.owner.remove(linked.calendar, "ev0")  # a deletion: the REPORT alone says it
    assert sync(gateway, linked.profile_id) == 1
    assert len([s for s in linked.proxy.take() if s.path.startswith(linked.calendar)]) <= 3
    assert summaries(gateway, linked)["Work"] == {"Event 1", "Event 2", "Event 3 (moved)",
                                                  "Event 4"}


def test_a_refused_sync_token_still_means_a_full_resync(gateway, link):
    linked = link("radicale")
    linked.owner.add(linked.calendar, "a", "A", soon(1))
    sync(gateway, linked.profile_id)
    with gateway.engine.begin() as conn:
        row = conn.execute(select(calendars.c.id, calendars.c.cursor).where(
            calendars.c.profile_id == linked.profile_id)).one()
        body = json.loads(row.cursor)
        body["t"] = body["t"][:-6] + "000000"  # a token Radicale never issued
        conn.execute(update(calendars).where(calendars.c.id == row.id)
                     .values(cursor=json.dumps(body)))
    linked.owner.add(linked.calendar, "b", "B", soon(2))
    linked.proxy.take()
    assert sync(gateway, linked.profile_id) == 1
    seen = linked.proxy.take()
    assert seen[0].status == 403  # Radicale: valid-sync-token, so a full resync follows
    assert summaries(gateway, linked) == {"Work": {"A", "B"}}


# -- the calendar list's own cadence -----------------------------------------------------


def test_calendars_added_or_renamed_upstream_show_up_after_the_list_interval(gateway, link):
    linked = link("radicale")
    sync(gateway, linked.profile_id)
    later = linked.owner.make_calendar("Later")
    linked.owner.add(later, "l1", "Later event", soon(3))
    linked.owner.calendar(linked.calendar).set_properties([dav.DisplayName("Work renamed")])
    linked.proxy.take()

    sync(gateway, linked.profile_id)  # inside the interval: the known calendar only
    assert not any(s.method == "PROPFIND" for s in linked.proxy.take())
    assert summaries(gateway, linked) == {"Work": set()}

    age_listing(gateway, linked.profile_id, 3601)
    assert sync(gateway, linked.profile_id) == 1
    assert summaries(gateway, linked) == {"Work renamed": set(), "Later": {"Later event"}}


def test_a_calendar_deleted_upstream_is_relisted_at_once(gateway, link):
    linked = link("radicale")
    later = linked.owner.make_calendar("Later")
    linked.owner.add(later, "l1", "Later event", soon(3))
    linked.owner.add(linked.calendar, "w1", "Work event", soon(4))
    sync(gateway, linked.profile_id)
    assert summaries(gateway, linked) == {"Work": {"Work event"}, "Later": {"Later event"}}
    with gateway.engine.connect() as conn:
        listed_before = conn.execute(select(profiles.c.calendars_listed_at).where(
            profiles.c.id == linked.profile_id)).scalar_one()

    linked.owner.delete_calendar(later)
    linked.owner.rename(linked.calendar, "w1", "Work event (moved)")
    newest = linked.owner.make_calendar("Later too")
    linked.owner.add(newest, "n1", "Newest event", soon(5))
    sync(gateway, linked.profile_id)  # Later's REPORT: 404, so the list is read again
    assert summaries(gateway, linked) == {"Work": {"Work event (moved)"},
                                          "Later too": {"Newest event"}}
    with gateway.engine.connect() as conn:
        gone = conn.execute(select(calendars.c.deleted).where(
            calendars.c.profile_id == linked.profile_id, calendars.c.name == "Later")
        ).scalar_one()
        listed_after = conn.execute(select(profiles.c.calendars_listed_at).where(
            profiles.c.id == linked.profile_id)).scalar_one()
    assert gone is True and listed_after > listed_before


def test_a_zero_interval_lists_the_calendars_on_every_sync(gateway, link):
    linked = link("xandikos")
    sync(gateway, linked.profile_id, list_interval=0)
    linked.proxy.take()
    sync(gateway, linked.profile_id, list_interval=0)
    assert any(s.method == "PROPFIND" and s.depth == "1" for s in linked.proxy.take())


# -- auth sent up front, Digest kept -------------------------------------------------------


def test_digest_still_works_when_a_basic_guess_is_refused(gateway, link):
    linked = link("xandikos", digest=True)
    linked.owner.add(linked.calendar, "a", "A", soon(1))
    sync(gateway, linked.profile_id)
    assert {s.auth for s in linked.proxy.take() if s.status != 401} == {"digest"}
    with gateway.engine.begin() as conn:  # as if the server had taken Basic before
        for row in conn.execute(select(calendars.c.id, calendars.c.cursor).where(
                calendars.c.profile_id == linked.profile_id)).all():
            body = json.loads(row.cursor)
            assert body["w"]["a"] == "digest"
            body["w"]["a"] = "basic"
            conn.execute(update(calendars).where(calendars.c.id == row.id)
                         .values(cursor=json.dumps(body)))

    linked.owner.add(linked.calendar, "b", "B", soon(2))
    assert sync(gateway, linked.profile_id) == 1  # Basic refused, Digest negotiated
    seen = linked.proxy.take()
    assert (seen[0].auth, seen[0].status) == ("basic", 401)
    assert all(s.auth == "digest" for s in seen if s.status != 401)
    assert summaries(gateway, linked)["Work"] == {"A", "B"}
    with gateway.engine.connect() as conn:
        cursors = conn.execute(select(calendars.c.cursor).where(
            calendars.c.profile_id == linked.profile_id)).scalars().all()
    assert {json.loads(c)["w"]["a"] for c in cursors} == {"digest"}


def test_a_changed_password_is_still_unauthorized_with_basic_sent_up_front():
    url, username, password = server_for("radicale")
    owner = DavOwner(url, username, password)
    calendar = owner.make_calendar("Work")
    try:
        good = open_account({"server_url": url, "username": username, "password": password},
                            LOOPBACK)
        cursor = aio.run(good.sync(calendar, None, WINDOW)).cursor
        aio.run(good.close())
        assert cursor is not None and json.loads(cursor.value)["w"]["a"] == "basic"
        bad = open_account({"server_url": url, "username": username, "password": "changed"},
                           LOOPBACK)
        try:
            with pytest.raises(Unauthorized):
                aio.run(bad.sync(calendar, cursor, WINDOW))
        finally:
            aio.run(bad.close())
    finally:
        owner.delete_calendar(calendar)
        owner.close()
