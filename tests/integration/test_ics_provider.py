"""The ICS feed provider against a real HTTP(S) feed server on loopback."""

from __future__ import annotations

import gzip
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from providers.errors import (
    CursorExpired,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from providers.ics.cursor import FeedCursor
from providers.ics.provider import REUSE_SECONDS, IcsFeedProvider
from providers.ics.settings import IcsSettings
from providers.model import EventDraft, SyncCursor, TimeWindow
from providers.outbound import BlockedAddress, OutboundPolicy, RedirectRefused
from providers.registry import ProviderOptions, open_account
from tests.support import aio
from tests.support.feedserver import FeedServer
from tests.support.outbound import LOOPBACK

T = TypeVar("T")
WINDOW = TimeWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))
LOOPBACK_OK = ProviderOptions(timeout=10, outbound=LOOPBACK)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return aio.run(coro)


def make_feed(*events: str, name: str = "Team feed") -> str:
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e.strip()}\r\nEND:VEVENT\r\n"
                   for e in events)
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nX-WR-CALNAME:{name}\r\n"
            f"X-WR-TIMEZONE:Europe/Berlin\r\n{body}END:VCALENDAR\r\n")


def event(uid: str, summary: str, day: int = 10) -> str:
    return (f"UID:{uid}\r\nDTSTART:202703{day:02d}T090000Z\r\nDTEND:202703{day:02d}T100000Z"
            f"\r\nSUMMARY:{summary}")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        srv.set_feed("/team.ics", make_feed(event("a", "Alpha"), event("b", "Beta", 11)))
        yield srv


def provider_for(server: FeedServer, path: str = "/team.ics",
                 options: ProviderOptions = LOOPBACK_OK, **kwargs: Any) -> IcsFeedProvider:
    return IcsFeedProvider(server.url(path), options, **kwargs)


# -- sync: conditional GET and content hash ---------------------------------------------

def test_second_sync_is_a_conditional_get_answered_304(server: FeedServer) -> None:
    provider = provider_for(server)
    first = run(provider.sync(provider.calendar_id, None, WINDOW))
    assert first.full and set(first.changed) == {"a", "b"}
    second = run(provider.sync(provider.calendar_id, first.cursor, WINDOW))
    assert (second.changed, second.deleted, second.full) == ({}, (), False)
    assert second.cursor == first.cursor
    initial, conditional = server.requests_for("/team.ics")
    feed = server.feeds["/team.ics"]
    assert initial.header("If-None-Match") is None
    assert conditional.header("If-None-Match") == feed.etag
    assert conditional.header("If-Modified-Since") is not None
    assert "gzip" in (conditional.header("Accept-Encoding") or "")


def test_a_changed_feed_is_a_full_listing(server: FeedServer) -> None:
    provider = provider_for(server)
    first = run(provider.sync(provider.calendar_id, None, WINDOW))
    server.set_feed("/team.ics", make_feed(event("a", "Alpha v2"), event("c", "Gamma", 12)))
    second = run(provider.sync(provider.calendar_id, first.cursor, WINDOW))
    assert second.full and set(second.changed) == {"a", "c"}  # "b" is gone
    assert [e.summary for e in second.changed["a"]] == ["Alpha v2"]
    assert second.cursor != first.cursor


def test_a_new_etag_with_the_same_content_is_no_change(server: FeedServer) -> None:
    provider = provider_for(server)
    first = run(provider.sync(provider.calendar_id, None, WINDOW))
    # Same events, a regenerated DTSTAMP: the server sees a new body and a new ETag.
    body = server.feeds["/team.ics"].body.replace(b"20260101T000000Z", b"20270101T000000Z")
    new_etag = server.set_feed("/team.ics", body).etag
    second = run(provider.sync(provider.calendar_id, first.cursor, WINDOW))
    assert (second.changed, second.full) == ({}, False)
    assert second.cursor is not None
    assert FeedCursor.decode(second.cursor).validators.etag == new_etag
    third = run(provider.sync(provider.calendar_id, second.cursor, WINDOW))
    assert third.cursor == second.cursor
    assert server.requests_for("/team.ics")[-1].header("If-None-Match") == new_etag


def test_a_window_beyond_the_last_one_lists_everything_again(server: FeedServer) -> None:
    provider = provider_for(server)
    first = run(provider.sync(provider.calendar_id, None, WINDOW))
    later = TimeWindow(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    moved = run(provider.sync(provider.calendar_id, first.cursor, later))
    assert moved.full and set(moved.changed) == {"a", "b"}
    assert server.requests_for("/team.ics")[-1].header("If-None-Match") is None
    narrower = TimeWindow(later.start + timedelta(days=1), later.end)
    inside = run(provider.sync(provider.calendar_id, moved.cursor, narrower))
    assert (inside.changed, inside.full) == ({}, False)


def test_listing_then_syncing_fetches_the_feed_once(server: FeedServer) -> None:
    assert REUSE_SECONDS > 0
    provider = provider_for(server)
    (calendar,) = run(provider.list_calendars())
    run(provider.sync(calendar.calendar_id, None, WINDOW))
    assert len(server.requests_for("/team.ics")) == 1


def test_an_unreadable_cursor_expires(server: FeedServer) -> None:
    provider = provider_for(server)
    with pytest.raises(CursorExpired):
        run(provider.sync(provider.calendar_id, SyncCursor("12345"), WINDOW))


def test_gzip_and_chunked_bodies_are_read(server: FeedServer) -> None:
    server.set_feed("/big.ics", make_feed(*(event(f"e{i}", f"Event {i}") for i in range(50))),
                    gzip=True, chunked=True)
    changes = run(provider_for(server, "/big.ics").sync(
        provider_for(server, "/big.ics").calendar_id, None, WINDOW))
    assert len(changes.changed) == 50
    (request,) = server.requests_for("/big.ics")
    assert request.header("Accept-Encoding") == "gzip"


# -- verify, calendars, free/busy, read-only --------------------------------------------

def test_verify_names_the_feed_and_lists_one_read_only_calendar(server: FeedServer) -> None:
    provider = provider_for(server)
    info = run(provider.verify())
    assert info.profile_name == "Team feed"
    assert info.upstream_id == server.url("/team.ics")
    (calendar,) = run(provider.list_calendars())
    assert (calendar.name, calendar.readonly, calendar.tzid) == ("Team feed", True,
                                                                 "Europe/Berlin")
    assert calendar.calendar_id == provider.calendar_id == provider_for(server).calendar_id


def test_the_users_own_name_wins_and_the_host_is_the_last_resort(server: FeedServer) -> None:
    named = provider_for(server, display_name="Holidays")
    assert run(named.verify()).profile_name == "Holidays"
    server.set_feed("/anon.ics", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    anonymous = provider_for(server, "/anon.ics")
    assert run(anonymous.verify()).profile_name == "127.0.0.1"  # the path may hold a token
    assert run(anonymous.list_calendars())[0].name == "127.0.0.1"


def test_free_busy_is_computed_from_the_feed(server: FeedServer) -> None:
    server.set_feed("/fb.ics", make_feed(
        event("busy", "Busy"), event("free", "Free", 11) + "\r\nTRANSP:TRANSPARENT",
        event("off", "Off", 12) + "\r\nSTATUS:CANCELLED"))
    provider = provider_for(server, "/fb.ics")
    blocks = run(provider.free_busy([provider.calendar_id], WINDOW))
    assert [(cal, b.start, b.status) for cal, b in blocks] == [
        (provider.calendar_id, datetime(2027, 3, 10, 9, tzinfo=UTC), "busy")]
    with pytest.raises(NotFound):
        run(provider.free_busy(["ics_elsewhere"], WINDOW))


def test_every_write_is_forbidden(server: FeedServer) -> None:
    provider = provider_for(server)
    cid = provider.calendar_id
    draft = EventDraft("k", "x", datetime(2027, 3, 1, tzinfo=UTC),
                       datetime(2027, 3, 1, 1, tzinfo=UTC))
    for call in (provider.put_event(cid, draft, None, None),
                 provider.delete_event(cid, "a", None),
                 provider.create_calendar("New", None),
                 provider.set_participation(cid, "a", None, "accepted")):
        with pytest.raises(Forbidden, match="read-only"):
            run(call)
    assert server.requests_for("/team.ics") == []


# -- URLs, webcal and TLS ----------------------------------------------------------------

def test_open_account_through_the_registry(server: FeedServer) -> None:
    provider = open_account("ics", {"url": server.url("/team.ics"), "name": "Team"},
                            LOOPBACK_OK)
    assert run(provider.verify()).profile_name == "Team"
    for bad in ({}, {"url": "ftp://example.com/x.ics"}, {"url": "https://"}):
        with pytest.raises(InvalidInput):
            open_account("ics", bad, LOOPBACK_OK)


def test_webcal_is_fetched_over_https_with_the_certificate_checked() -> None:
    with FeedServer(tls=True) as tls_server:
        assert tls_server.tls is not None
        tls_server.set_feed("/team.ics", make_feed(event("a", "Alpha")))
        context = tls_server.tls.client_context()
        for host in ("127.0.0.1", "localhost"):  # an address, and a name pinned to one
            url = tls_server.url("/team.ics", host=host, scheme="webcal")
            provider = IcsFeedProvider(url, LOOPBACK_OK, verify=context)
            assert provider.url.startswith("https://")
            assert run(provider.verify()).profile_name == "Team feed"
        untrusted = IcsFeedProvider(tls_server.url("/team.ics", scheme="webcal"), LOOPBACK_OK)
        with pytest.raises(Unavailable, match="connect"):
            run(untrusted.verify())
        assert len(tls_server.requests_for("/team.ics")) == 2


# -- limits -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["content-length", "chunked", "gzip-bomb"])
def test_a_feed_over_the_size_cap_is_refused(server: FeedServer, shape: str) -> None:
    filler = "X-FILLER:" + "x" * 60 + "\r\n"
    body = make_feed(event("a", "Alpha")).replace("END:VCALENDAR", filler * 2000
                                                  + "END:VCALENDAR")
    server.set_feed("/huge.ics", body, gzip=shape == "gzip-bomb", chunked=shape == "chunked")
    if shape == "gzip-bomb":
        assert len(gzip.compress(body.encode())) < 50_000
    options = ProviderOptions(timeout=10, outbound=LOOPBACK,
                              settings={"ics": IcsSettings(max_bytes=50000)})
    with pytest.raises(InvalidInput, match="larger than the limit of 50000 bytes"):
        run(provider_for(server, "/huge.ics", options).verify())
    run(provider_for(server, "/huge.ics").verify())  # the default cap is 10 MiB


def test_a_hanging_server_times_out(server: FeedServer) -> None:
    server.respond("/slow.ics", 200, make_feed(), delay=5)
    options = ProviderOptions(timeout=0.5, outbound=LOOPBACK)
    # The feed answers after 5 s; an error (not the feed) proves the 0.5 s timeout fired.
    with pytest.raises(Unavailable, match="in time"):
        run(provider_for(server, "/slow.ics", options).verify())


def test_a_2000_event_feed_parses_and_expands_every_instance(server: FeedServer) -> None:
    # How long this takes is measured in bench/ (events), never asserted here.
    events = []
    for i in range(2000):
        start = datetime(2027, 1, 1, 8, tzinfo=UTC) + timedelta(hours=5 * i)
        rule = "\r\nRRULE:FREQ=DAILY;COUNT=30" if i % 10 == 0 else ""
        events.append(f"UID:e{i}@big\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDURATION:PT30M"
                      f"\r\nSUMMARY:Event {i}{rule}")
    server.set_feed("/big.ics", make_feed(*events))
    provider = provider_for(server, "/big.ics")
    year = TimeWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    changes = run(provider.sync(provider.calendar_id, None, year))
    assert len(changes.changed) == 2000
    # Every single event and every daily occurrence that starts inside the year.
    starts = [datetime(2027, 1, 1, 8, tzinfo=UTC) + timedelta(hours=5 * i) for i in range(2000)]
    expected = sum(sum(1 for d in range(30 if i % 10 == 0 else 1)
                       if s + timedelta(days=d) < year.end) for i, s in enumerate(starts))
    assert sum(len(v) for v in changes.changed.values()) == expected


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "headers", "error"), [
    (404, {}, NotFound),
    (410, {}, NotFound),
    (401, {"WWW-Authenticate": 'Basic realm="feed"'}, Unauthorized),
    (403, {}, Forbidden),
    (500, {}, Unavailable),
    (503, {}, Unavailable),
    (400, {}, InvalidInput),
])
def test_statuses_map_onto_the_error_tree(server: FeedServer, status: int,
                                          headers: dict[str, str],
                                          error: type[Exception]) -> None:
    server.respond("/err.ics", status, "nope", headers)
    with pytest.raises(error, match=f"HTTP {status}"):
        run(provider_for(server, "/err.ics").verify())


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_becomes_rate_limited(server: FeedServer, status: int) -> None:
    server.respond("/busy.ics", status, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        run(provider_for(server, "/busy.ics").verify())
    assert caught.value.retry_after == 7


def test_an_unknown_path_is_not_found(server: FeedServer) -> None:
    with pytest.raises(NotFound):
        run(provider_for(server, "/missing.ics").sync(
            provider_for(server, "/missing.ics").calendar_id, None, WINDOW))


def test_a_web_page_is_not_a_calendar(server: FeedServer) -> None:
    server.set_feed("/page", "<!doctype html><title>Log in</title>",
                    content_type="text/html; charset=utf-8")
    with pytest.raises(InvalidInput, match="did not return an iCalendar feed"):
        run(provider_for(server, "/page").verify())


def test_a_closed_port_is_unavailable() -> None:
    with FeedServer() as gone:
        url = gone.url("/team.ics")
    with pytest.raises(Unavailable):
        run(IcsFeedProvider(url, LOOPBACK_OK).verify())


# -- SSRF ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "rule"), [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("169.254.169.254", "link-local"),
    ("[::1]", "loopback"),
    ("localhost", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[fd00::1]", "private"),
    ("224.0.0.1", "multicast"),
])
def test_private_addresses_are_refused_by_default(server: FeedServer, host: str,
                                                  rule: str) -> None:
    url = f"http://{host}:{server.port}/team.ics"
    with pytest.raises(BlockedAddress, match=f"is a {rule} address"):
        run(IcsFeedProvider(url, ProviderOptions(timeout=2)).verify())
    assert server.requests_for("/team.ics") == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_allow_private_networks_lets_loopback_through(server: FeedServer, host: str) -> None:
    provider = IcsFeedProvider(server.url("/team.ics", host=host), LOOPBACK_OK)
    assert run(provider.verify()).profile_name == "Team feed"


def test_a_name_is_fetched_from_the_address_that_was_checked(server: FeedServer) -> None:
    # The fake DNS answers once; pinning means no second lookup can change the target.
    answers = iter([["127.0.0.1"]])

    def resolver(host: str, port: int) -> list[str]:
        return next(answers)

    url = f"http://calendar.example.test:{server.port}/team.ics"
    options = ProviderOptions(timeout=10, outbound=OutboundPolicy.allowing(
        ["127.0.0.0/8"], resolver))
    provider = IcsFeedProvider(url, options)
    assert run(provider.verify()).profile_name == "Team feed"
    (request,) = server.requests_for("/team.ics")
    assert request.header("Host") == f"calendar.example.test:{server.port}"


def test_a_name_with_any_private_answer_is_refused(server: FeedServer) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    url = "https://calendar.example.test/team.ics"
    options = ProviderOptions(outbound=OutboundPolicy(resolver=resolver))
    with pytest.raises(BlockedAddress, match=r"10\.1\.2\.3 is a private address"):
        run(IcsFeedProvider(url, options).verify())


# The test server's 127.0.0.1 (only) is allowed, so the *redirect* is what is judged.
ONLY_THIS_LOOPBACK = ProviderOptions(timeout=5,
                                     outbound=OutboundPolicy.allowing(["127.0.0.1/32"]))


@pytest.mark.parametrize(("target", "rule"), [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/feed.ics", "private"),
    ("http://[::1]/feed.ics", "loopback"),
])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_a_private_address_is_refused(server: FeedServer, target: str,
                                                    rule: str, status: int) -> None:
    server.redirect("/hop.ics", target, status=status)
    provider = provider_for(server, "/hop.ics", ONLY_THIS_LOOPBACK)
    with pytest.raises(BlockedAddress, match=f"is a {rule} address"):
        run(provider.verify())
    assert len(server.requests_for("/hop.ics")) == 1


def test_redirects_are_followed_within_the_rules(server: FeedServer) -> None:
    server.redirect("/old.ics", server.url("/team.ics"), status=301)
    provider = provider_for(server, "/old.ics", ONLY_THIS_LOOPBACK)
    assert run(provider.verify()).profile_name == "Team feed"
    server.redirect("/loop.ics", "/loop.ics")
    with pytest.raises(RedirectRefused, match="more than 5 redirects"):
        run(provider_for(server, "/loop.ics").verify())
