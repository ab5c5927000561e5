"""The weekly-series journey every writable provider runs (tests/integration/test_recurring_*):
written through the API, it is one series upstream, reads back expanded with a shared
``series_identifier``, follows an update of the managed event and goes with its delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import aio


@dataclass
class Upstream:
    """What the test needs from one provider's side: how many series it holds for the
    summary prefix (and of those, how many non-series objects), and a sync."""

    series: Callable[[str], int]  # objects carrying a recurrence rule, for a summary prefix
    singles: Callable[[str], int]  # objects without one
    sync: Callable[[], None]


def first_monday(days_ahead: int = 3) -> datetime:
    """A Monday 09:00 UTC at least ``days_ahead`` from now (inside the sync window)."""
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    day += timedelta(days=days_ahead)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def drain(gateway) -> None:
    outbox = gateway.worker.outbox
    for managed_id in outbox.due():
        assert aio.run(outbox.apply(managed_id)).ok


def read(http, headers, prefix: str) -> list[dict[str, Any]]:
    r = http.get("/v1/events", headers=headers, params={
        "tzid": "Etc/UTC", "include_managed": "true"})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["events"] if e.get("summary", "").startswith(prefix)]


def run_weekly_series(http, gateway, headers, calendar_id: str, upstream: Upstream,
                      prefix: str = "Weekly mentoring") -> None:
    start = first_monday()
    path = f"/v1/calendars/{calendar_id}/events"
    body = {"event_id": "weekly-1", "summary": prefix, "tzid": "Etc/UTC",
            "start": stamp(start), "end": stamp(start + timedelta(hours=1)),
            "recurrence": {"rules": [{"frequency": "weekly", "count": 4}]}}
    assert http.post(path, headers=headers, json=body).status_code == 202
    drain(gateway)
    assert (upstream.series(prefix), upstream.singles(prefix)) == (1, 0)
    upstream.sync()
    shown = read(http, headers, prefix)
    starts = [e["start"] for e in shown]
    assert starts == [stamp(start + timedelta(weeks=n)) for n in range(4)]
    assert {e["event_id"] for e in shown} == {"weekly-1"}
    assert all(e["recurring"] is True for e in shown)
    assert len({e["series_identifier"] for e in shown}) == 1
    assert len({e["event_uid"] for e in shown}) == 4

    # Updating the managed event updates the series: new summary, two days a week, 3 weeks.
    body |= {"summary": f"{prefix} (moved)", "recurrence": {"rules": [{
        "frequency": "weekly", "by_day": ["monday", "wednesday"],
        "until": (start + timedelta(days=16)).date().isoformat()}]}}
    assert http.post(path, headers=headers, json=body).status_code == 202
    drain(gateway)
    assert (upstream.series(prefix), upstream.singles(prefix)) == (1, 0)
    upstream.sync()
    shown = read(http, headers, prefix)
    days = [datetime.fromisoformat(e["start"].replace("Z", "+00:00")) for e in shown]
    assert [(d - start).days for d in days] == [0, 2, 7, 9, 14, 16]
    assert {e["summary"] for e in shown} == {f"{prefix} (moved)"}
    assert len({e["series_identifier"] for e in shown}) == 1

    # Deleting it deletes the series.
    r = http.request("DELETE", path, headers=headers, json={"event_id": "weekly-1"})
    assert r.status_code == 202, r.text
    drain(gateway)
    assert (upstream.series(prefix), upstream.singles(prefix)) == (0, 0)
    upstream.sync()
    assert read(http, headers, prefix) == []
