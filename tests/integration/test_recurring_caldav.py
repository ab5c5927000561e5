"""Recurring managed events on a real Radicale through the whole gateway: one VEVENT with an
RRULE upstream, read back expanded (tests/integration/recurring_scenario.py)."""

from __future__ import annotations

import icalendar

from tests.integration.recurring_scenario import Upstream, run_weekly_series
from tests.integration.test_caldav_sync_api import (  # noqa: F401 (fixtures)
    SCOPE,
    bearer_for,
    linked,
    radicale,
    settings,
    sync,
)


def _objects(owner, path, prefix: str) -> list[icalendar.Event]:
    found = []
    for item in owner.calendar(path).events():
        for event in icalendar.Calendar.from_ical(item.data).walk("VEVENT"):
            if str(event.get("SUMMARY", "")).startswith(prefix):
                found.append(event)
    return found


def test_a_weekly_series_is_one_vevent_with_an_rrule(http, gateway, linked):  # noqa: F811
    profile, _server, owner, path = linked
    sync(gateway, profile.profile_id)
    headers = bearer_for(http, gateway, profile.subject, " ".join(SCOPE))
    calendar_id = http.get("/v1/calendars", headers=headers).json()["calendars"][0][
        "calendar_id"]
    upstream = Upstream(
        series=lambda p: sum(1 for e in _objects(owner, path, p) if e.get("RRULE")),
        singles=lambda p: sum(1 for e in _objects(owner, path, p) if not e.get("RRULE")),
        sync=lambda: sync(gateway, profile.profile_id))
    run_weekly_series(http, gateway, headers, calendar_id, upstream)
