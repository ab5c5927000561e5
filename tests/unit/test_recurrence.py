"""The typed recurrence rule and its upstream forms: RFC 5545 RRULE values (CalDAV, Google)
and Graph's patternedRecurrence, plus the sealed form round trip."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.domain.desired import DesiredEvent
from providers.google.mapping import body_from_draft
from providers.microsoft.recurrence import patterned_recurrence
from providers.model import EventDraft
from providers.recurrence import RecurrenceRule

MONDAY = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # 09:00 UTC is 10:00 in Berlin


def draft(rule: RecurrenceRule | None, start=MONDAY, tzid: str = "Europe/Berlin"):
    end = date(2027, 3, 2) if isinstance(start, date) and not isinstance(
        start, datetime) else start.replace(hour=10)
    return EventDraft(managed_key="k", summary="s", start=start, end=end,
                      start_tzid=tzid, end_tzid=tzid, recurrence=rule)


@pytest.mark.parametrize(("rule", "expected"), [
    (RecurrenceRule("weekly"), "FREQ=WEEKLY;WKST=MO"),
    (RecurrenceRule("daily", interval=2, count=3), "FREQ=DAILY;INTERVAL=2;COUNT=3;WKST=MO"),
    (RecurrenceRule("weekly", by_day=("monday", "friday")),
     "FREQ=WEEKLY;BYDAY=MO,FR;WKST=MO"),
    # The until day is inclusive, to its last second in the event's zone (CET: UTC+1).
    (RecurrenceRule("monthly", until=date(2027, 6, 1)),
     "FREQ=MONTHLY;UNTIL=20270601T215959Z;WKST=MO"),
    (RecurrenceRule("yearly", until=datetime(2030, 2, 28, 23, 30, tzinfo=UTC)),
     "FREQ=YEARLY;UNTIL=20300301T225959Z;WKST=MO"),
])
def test_rrule_values(rule, expected):
    assert rule.rrule(MONDAY, "Europe/Berlin") == expected


def test_an_all_day_series_ends_on_a_date():
    rule = RecurrenceRule("weekly", until=datetime(2027, 4, 5, 12, tzinfo=UTC))
    assert rule.rrule(date(2027, 3, 1), "Etc/UTC") == "FREQ=WEEKLY;UNTIL=20270405;WKST=MO"


@pytest.mark.parametrize("bad", [
    {"frequency": "hourly"}, {"frequency": "daily", "interval": 0},
    {"frequency": "daily", "count": 2, "until": date(2030, 1, 1)},
    {"frequency": "monthly", "by_day": ("monday",)},
])
def test_impossible_rules_cannot_be_made(bad):
    with pytest.raises(ValueError):
        RecurrenceRule(**bad)


def test_google_gets_one_rrule_line_and_a_single_event_clears_it():
    assert body_from_draft(draft(RecurrenceRule("weekly", count=4)))["recurrence"] == [
        "RRULE:FREQ=WEEKLY;COUNT=4;WKST=MO"]
    assert body_from_draft(draft(None))["recurrence"] is None


def test_graph_patterned_recurrence():
    weekly = patterned_recurrence(draft(RecurrenceRule("weekly", interval=2, count=5)))
    assert weekly == {
        "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday"],
                    "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "numberOfOccurrences": 5, "startDate": "2027-03-01",
                  "recurrenceTimeZone": "Europe/Berlin"}}
    yearly = patterned_recurrence(draft(RecurrenceRule("yearly", until=date(2031, 3, 1))))
    assert yearly is not None
    assert yearly["pattern"] == {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 1,
                                 "month": 3}
    assert yearly["range"]["type"] == "endDate" and yearly["range"]["endDate"] == "2031-03-01"
    late = datetime(2027, 3, 1, 23, 30, tzinfo=UTC)  # already Tuesday in Berlin
    monthly = patterned_recurrence(draft(RecurrenceRule("monthly"), start=late))
    assert monthly is not None
    assert monthly["pattern"]["dayOfMonth"] == 2 and monthly["range"] == {
        "type": "noEnd", "startDate": "2027-03-02", "recurrenceTimeZone": "Europe/Berlin"}
    assert patterned_recurrence(draft(None)) is None


def test_the_sealed_form_keeps_the_rule_and_old_rows_have_none():
    rule = RecurrenceRule("weekly", by_day=("tuesday",), until=date(2027, 5, 4))
    desired = DesiredEvent(summary="s", start=MONDAY, end=MONDAY.replace(hour=10),
                           recurrence=rule)
    stored = desired.to_stored()
    assert stored["recurrence"] == {"rules": [{"frequency": "weekly", "interval": 1,
                                               "until": "2027-05-04", "by_day": ["tuesday"]}]}
    assert DesiredEvent.from_stored(stored) == desired
    single = DesiredEvent(summary="s", start=MONDAY, end=MONDAY.replace(hour=10))
    assert "recurrence" not in single.to_stored()
    assert DesiredEvent.from_stored(single.to_stored()).recurrence is None
