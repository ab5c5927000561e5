"""Managed availability: when a member with ``managed_availability: true`` may be booked.

The engine's caller asks a :class:`ManagedAvailability` for each such member's bookable
windows (from their availability rules and available periods) and narrows the member's free
time to them. Storing rules is not the engine's business: the service that keeps them
implements the Protocol; :class:`NoRules` answers for a gateway that stores none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class ManagedAvailability(Protocol):
    """Where an account's bookable windows come from."""

    async def intervals(self, account_id: str, start: datetime, end: datetime,
                        rule_ids: Sequence[str] | None) -> list[tuple[datetime, datetime]]:
        """The windows inside ``[start, end)`` (aware, UTC) in which the account may be
        booked per its rules (only ``rule_ids`` when given) and available periods, sorted
        and not overlapping."""
        ...


class NoRules:
    """No rules stored: a managed member is bookable whenever their calendars are free,
    as if ``managed_availability`` were false (the whole window is one bookable span)."""

    async def intervals(self, account_id: str, start: datetime, end: datetime,
                        rule_ids: Sequence[str] | None) -> list[tuple[datetime, datetime]]:
        return [(start, end)] if start < end else []


__all__ = ["ManagedAvailability", "NoRules"]
