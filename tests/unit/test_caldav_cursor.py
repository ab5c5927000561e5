"""The CalDAV sync cursor's record of where the calendar was found (no network)."""

from __future__ import annotations

import json

import pytest

from providers.caldav import cursor as cursors
from providers.errors import CursorExpired
from providers.model import SyncCursor

WHERE = cursors.Where("https://p07-caldav.icloud.com/123/calendars/work/",
                      frozenset({"me@example.com", "me@icloud.com"}), "Europe/Berlin", "basic")


@pytest.mark.parametrize("state", [
    cursors.TokenState("tok-1", {"/123/calendars/work/a.ics": "uid-a"}, WHERE),
    cursors.CtagState("c1", {"/123/calendars/work/a.ics": ('"e1"', "uid-a")}, WHERE),
    cursors.TokenState("tok-2", {}, cursors.Where("http://127.0.0.1:5232/alice/work/")),
])
def test_the_calendars_whereabouts_round_trip(state):
    encoded = cursors.encode(state, "/123/calendars/work/")
    assert cursors.decode(encoded, "/123/calendars/work/") == state


def test_a_cursor_from_before_the_whereabouts_still_decodes_without_them():
    old = SyncCursor('{"v":1,"k":"t","t":"tok","u":{"a.ics":"uid-a"}}')
    state = cursors.decode(old, "/cal/")
    assert state == cursors.TokenState("tok", {"/cal/a.ics": "uid-a"})
    assert state.where is None


@pytest.mark.parametrize("where", [
    {"u": "file:///etc/passwd", "o": [], "z": None, "a": None},  # not an http(s) URL
    {"u": 7, "o": [], "z": None, "a": None},
    {"o": [], "z": None, "a": None},
    "https://dav.example/cal/",
])
def test_malformed_whereabouts_expire_the_cursor(where):
    body = {"v": 1, "k": "t", "t": "tok", "u": {}, "w": where}
    with pytest.raises(CursorExpired):
        cursors.decode(SyncCursor(json.dumps(body)), "/cal/")
