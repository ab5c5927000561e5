"""Feed URLs, bounded body reading, the sync cursor and the error table of the ICS provider."""

from __future__ import annotations

import gzip
import socket
from datetime import UTC, datetime

import httpx
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
from providers.ics.client import (
    FeedEncodingError,
    FeedStatusError,
    FeedTooLarge,
    Validators,
    normalise_url,
    public_url,
    read_capped,
)
from providers.ics.cursor import FeedCursor
from providers.ics.errors import from_status, retry_after_seconds, translate
from providers.model import SyncCursor, TimeWindow
from providers.outbound import BlockedAddress
from tests.support import aio


@pytest.mark.parametrize(("url", "expected"), [
    ("webcal://Example.COM/cal.ics", "https://example.com/cal.ics"),
    ("webcals://example.com/cal.ics", "https://example.com/cal.ics"),
    ("https://example.com:443/a.ics?token=1#frag", "https://example.com/a.ics?token=1"),
    ("HTTP://example.com:8080/a.ics", "http://example.com:8080/a.ics"),
    ("  https://example.com/a.ics  ", "https://example.com/a.ics"),
])
def test_feed_urls_are_normalised(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://example.com/a.ics", "file:///etc/passwd",
                                 "https:///a.ics", "example.com/a.ics", "javascript:x"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(url)


def test_public_url_drops_credentials() -> None:
    assert public_url("https://me:secret@example.com/a.ics") == "https://example.com/a.ics"


def read(body: bytes, headers: dict[str, str], limit: int) -> bytes:
    response = httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))
    return aio.run(read_capped(response, limit))


def test_gzip_is_inflated_within_the_limit() -> None:
    data = b"BEGIN:VCALENDAR\r\n" * 1000
    assert read(gzip.compress(data, mtime=0), {"Content-Encoding": "gzip"}, len(data)) == data


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000, mtime=0)
    assert len(bomb) < 10_000
    with pytest.raises(FeedTooLarge):
        read(bomb, {"Content-Encoding": "gzip"}, 100_000)


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(FeedTooLarge):
        read(b"x" * 10, {"Content-Length": "1000000"}, 1000)


@pytest.mark.parametrize(("body", "encoding"), [
    (b"not gzip at all", "gzip"),
    (gzip.compress(b"x" * 1000, mtime=0)[:20], "gzip"),
    (b"whatever", "br"),
])
def test_broken_or_unsupported_encodings_are_refused(body: bytes, encoding: str) -> None:
    with pytest.raises(FeedEncodingError):
        read(body, {"Content-Encoding": encoding}, 10_000)


def test_validators_become_conditional_headers() -> None:
    assert Validators('"abc"', "Sat, 01 Jan 2027 00:00:00 GMT").headers() == {
        "If-None-Match": '"abc"', "If-Modified-Since": "Sat, 01 Jan 2027 00:00:00 GMT"}
    assert Validators().headers() == {}


def test_the_cursor_round_trips_and_knows_its_window() -> None:
    window = TimeWindow(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC))
    cursor = FeedCursor(Validators('"e"', None), "d" * 64, window)
    assert FeedCursor.decode(cursor.encode()) == cursor
    assert cursor.covers(window)
    assert cursor.covers(TimeWindow(datetime(2027, 2, 1, tzinfo=UTC), window.end))
    assert not cursor.covers(TimeWindow(window.start, datetime(2027, 7, 2, tzinfo=UTC)))


@pytest.mark.parametrize("value", ["", "42", "[]", '{"v":2}', '{"v":1,"etag":null}'])
def test_a_foreign_cursor_has_expired(value: str) -> None:
    with pytest.raises(CursorExpired):
        FeedCursor.decode(SyncCursor(value))


@pytest.mark.parametrize(("status", "error"), [
    (401, Unauthorized), (403, Forbidden), (404, NotFound), (410, NotFound),
    (429, RateLimited), (500, Unavailable), (502, Unavailable), (503, Unavailable),
    (400, InvalidInput), (406, InvalidInput),
])
def test_statuses(status: int, error: type[Exception]) -> None:
    assert type(from_status(status, None)) is error


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Fri, 01 Jan 2027 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Fri, 01 Jan 2027 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    limited = from_status(503, "60")
    assert isinstance(limited, RateLimited) and limited.retry_after == 60


@pytest.mark.parametrize(("exc", "error"), [
    (FeedStatusError(404, None), NotFound),
    (BlockedAddress("h", "10.0.0.1", "private"), BlockedAddress),
    (FeedTooLarge(10), InvalidInput),
    (FeedEncodingError("bad"), InvalidInput),
    (httpx.TooManyRedirects("loop"), InvalidInput),
    (httpx.ConnectError("refused"), Unavailable),
    (httpx.ReadTimeout("slow"), Unavailable),
    (httpx.RemoteProtocolError("eh"), Unavailable),
    (TimeoutError(), Unavailable),
    (socket.gaierror(-2, "Name or service not known"), Unavailable),
])
def test_fetch_errors_are_translated(exc: Exception, error: type[Exception]) -> None:
    assert type(translate(exc)) is error
