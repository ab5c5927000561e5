"""``recurrence`` in the upsert body: invalid rules and a calendar that cannot keep a series
are 422s naming ``recurrence`` (on both databases)."""

from __future__ import annotations

import pytest

from tests.integration.test_api_writes import body, errors_of, setup  # noqa: F401 (fixture)


def rules(**rule):
    return {"recurrence": {"rules": [rule]}}


@pytest.mark.parametrize("recurrence", [
    {"rules": "weekly"},
    ["weekly"],
    {"rules": [{"frequency": "hourly"}]},
    {"rules": [{"frequency": "weekly"}, {"frequency": "daily"}]},
    {"rules": [{"frequency": "daily", "by_day": ["monday"]}]},
    {"rules": [{"frequency": "weekly", "by_day": ["mon"]}]},
    {"rules": [{"frequency": "weekly", "interval": 0}]},
    {"rules": [{"frequency": "weekly", "interval": True}]},
    {"rules": [{"frequency": "weekly", "count": 1001}]},
    {"rules": [{"frequency": "weekly", "count": 3, "until": "2199-01-01"}]},
    {"rules": [{"frequency": "weekly", "until": "2001-01-01"}]},
    {"rules": [{"frequency": "weekly", "until": "next tuesday"}]},
])
def test_invalid_rules_are_a_422_naming_recurrence(http, setup, recurrence):  # noqa: F811
    headers, calendar_id, *_ = setup
    r = http.post(f"/v1/calendars/{calendar_id}/events", headers=headers,
                  json=body(recurrence=recurrence))
    assert errors_of(r) == {"recurrence": ["errors.invalid"]}
    assert r.json()["errors"]["recurrence"][0]["description"]


def test_a_calendar_that_cannot_keep_a_series_refuses_it(http, setup):  # noqa: F811
    """The in-memory provider declares no recurring writes: 422, nothing queued, and the
    same body without a rule (or with none) is accepted."""
    headers, calendar_id, *_ = setup
    path = f"/v1/calendars/{calendar_id}/events"
    r = http.post(path, headers=headers, json=body(**rules(frequency="weekly", count=3)))
    assert errors_of(r) == {"recurrence": ["errors.unsupported"]}
    assert "recurring" in r.json()["errors"]["recurrence"][0]["description"]
    assert http.post(path, headers=headers, json=body(recurrence={"rules": []})
                     ).status_code == 202
    batch = http.post("/v1/batch", headers=headers, json={"batch": [{
        "method": "POST", "relative_url": path,
        "data": body(event_id="e2", **rules(frequency="daily"))}]})
    assert batch.status_code == 207, batch.text
    (entry,) = batch.json()["batch"]
    assert entry["status"] == 422 and "recurrence" in entry["data"]["errors"]
