"""Recurring managed events on Microsoft 365 (the Graph emulator) through the whole gateway:
one ``seriesMaster`` with a ``patternedRecurrence`` upstream, read back expanded from the
occurrences calendarView and its delta list."""

from __future__ import annotations

from tests.integration.recurring_scenario import Upstream, run_weekly_series
from tests.integration.test_caldav_sync_api import sync
from tests.integration.test_microsoft_gateway import (  # noqa: F401 (fixtures)
    browser,
    configured,
    emu,
    link,
    profile_of,
    settings,
)


def test_a_weekly_series_is_one_series_master(configured, emu, browser, http):  # noqa: F811
    gateway = configured
    email, headers = link(http, emu, browser, gateway)
    profile_id = profile_of(gateway, email)
    sync(gateway, profile_id)
    calendar_id = next(c["calendar_id"] for c in http.get(
        "/v1/calendars", headers=headers).json()["calendars"] if c["calendar_primary"])

    def objects(prefix: str) -> list[dict]:
        return [e for e in emu.events(email) if (e.get("subject") or "").startswith(prefix)]

    def series(prefix: str) -> int:
        found = [e for e in objects(prefix) if e["type"] == "seriesMaster"]
        for master in found:  # Graph's documented shape: a pattern and a range
            assert set(master["recurrence"]) == {"pattern", "range"}
            assert master["recurrence"]["pattern"]["type"] == "weekly"
        return len(found)

    upstream = Upstream(
        series=series,
        singles=lambda p: sum(1 for e in objects(p) if e["type"] != "seriesMaster"),
        sync=lambda: sync(gateway, profile_id))
    run_weekly_series(http, gateway, headers, calendar_id, upstream)
