"""Recurring managed events on Google (the emulator) through the whole gateway: one event
with ``recurrence: ["RRULE:…"]`` upstream, read back expanded from its instances."""

from __future__ import annotations

from tests.integration.recurring_scenario import Upstream, run_weekly_series
from tests.integration.test_caldav_sync_api import sync
from tests.integration.test_google_gateway import (  # noqa: F401 (fixtures)
    _clean,
    emu,
    linked,
    settings,
)


def test_a_weekly_series_is_one_google_event_with_a_recurrence(
        http, gateway, emu, linked):  # noqa: F811
    email, profile, headers, calendar_id = linked

    def objects(prefix: str) -> list[dict]:
        return [e for e in emu.events(email) if e.get("summary", "").startswith(prefix)]

    upstream = Upstream(
        series=lambda p: sum(1 for e in objects(p) if e.get("recurrence")),
        singles=lambda p: sum(1 for e in objects(p) if not e.get("recurrence")),
        sync=lambda: sync(gateway, profile.profile_id))
    run_weekly_series(http, gateway, headers, calendar_id, upstream)
