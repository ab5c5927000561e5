"""Managed availability from the store (API.md s8.3): what an availability query uses for a
member with ``managed_availability: true``.

A member is available in the union of its rules' weekly periods (all of the account's rules,
or only ``availability_rule_ids``) and its one-off available periods: rules are the regular
week, available periods add one-off times (an interview slot on a Saturday). A member with
neither is available nowhere. The rules' ``calendar_ids`` say which calendars count as busy
(:meth:`StoredManagedAvailability.busy_calendars`); a rule without them counts every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from anyio import to_thread

from ..domain.availability.rules import Interval, expand, find_zone, merge
from .availability_rules import AvailabilityRuleService


class StoredManagedAvailability:
    """The availability engine's ``ManagedAvailability``, read from the rule store."""

    def __init__(self, store: AvailabilityRuleService) -> None:
        self.store = store

    async def intervals(self, account_id: str, start: datetime, end: datetime,
                        rule_ids: Sequence[str] | None) -> list[Interval]:
        """The UTC intervals in [``start``, ``end``) in which the member is available."""
        return await to_thread.run_sync(partial(self.available, account_id, start, end,
                                                rule_ids))

    async def busy_calendars(self, account_id: str, rule_ids: Sequence[str] | None
                             ) -> frozenset[str] | None:
        """The calendars whose events count as busy; None for every calendar."""
        return await to_thread.run_sync(partial(self.calendars, account_id, rule_ids))

    def available(self, account_id: str, start: datetime, end: datetime,
                  rule_ids: Sequence[str] | None) -> list[Interval]:
        found: list[Interval] = []
        for rule in self.store.list_rules(account_id, rule_ids):
            zone = find_zone(rule.tzid)
            if zone is not None:  # checked on upsert; a zone dropped from tzdata is skipped
                found.extend(expand(rule.periods, zone, start, end))
        for period in self.store.periods_between(account_id, start, end):
            found.append((max(period.start, start), min(period.end, end)))
        return merge(found)

    def calendars(self, account_id: str, rule_ids: Sequence[str] | None
                  ) -> frozenset[str] | None:
        rules = self.store.list_rules(account_id, rule_ids)
        if not rules or any(rule.calendar_ids is None for rule in rules):
            return None
        named = {c for rule in rules for c in rule.calendar_ids or ()}
        # A calendar gone since the rule was saved (its profile revoked) no longer counts;
        # if none is left, every calendar does: never free because a calendar vanished.
        live = named & self.store.live_calendars(account_id)
        return frozenset(live) or None
