"""The Microsoft sync cursor: a deltaLink and the window it was made for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.errors import CursorExpired
from providers.microsoft import sync
from providers.model import SyncCursor, TimeWindow


def test_the_cursor_round_trips_and_refuses_foreign_values():
    window = TimeWindow(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
    link = "https://graph.microsoft.com/v1.0/me/calendars/c/calendarView/delta?$deltatoken=x"
    state = sync.decode(sync.encode(link, window))
    assert state.delta_link == link and sync.reusable(state, window)
    moved = TimeWindow(window.start, datetime(2027, 4, 2, tzinfo=UTC))
    assert not sync.reusable(state, moved)
    for value in ("sync-token-from-google", '{"v": 9, "d": "x", "w": []}',
                  '{"v": 1, "d": "", "w": ["2027-03-01T00:00:00+00:00", "x"]}'):
        with pytest.raises(CursorExpired):
            sync.decode(SyncCursor(value))
