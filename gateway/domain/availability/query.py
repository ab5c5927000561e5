"""A parsed availability query (API.md s8.1): what the engine answers, already validated.

Times are whole seconds since the epoch (UTC), durations whole seconds; the API layer turns
Cronofy's wire shapes into these and refuses what breaks a documented limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .intervals import Span

ResponseFormat = Literal["periods", "slots", "overlapping_slots"]
ALL: Literal["all"] = "all"


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a participant group: an account (``acc_…``) or resource (``res_…``)."""

    sub: str
    calendar_ids: tuple[str, ...] = ()  # empty: every calendar of the account counts
    available_periods: tuple[Span, ...] = ()  # empty: no limit of the member's own
    managed_availability: bool = False
    availability_rule_ids: tuple[str, ...] | None = None  # None: every rule of the account


@dataclass(frozen=True, slots=True)
class Group:
    """Members of which ``required`` (``"all"`` or a count) must be free together."""

    members: tuple[Member, ...]
    required: int | Literal["all"] = ALL

    @property
    def needed(self) -> int:
        """How many members must be free: every one for ``"all"``."""
        return len(self.members) if self.required == ALL else int(self.required)


@dataclass(frozen=True, slots=True)
class Buffer:
    """Free time each member needs around a slot (seconds). Cronofy's ``{minimum,
    maximum}`` form is answered with the minimum: the engine never grows a buffer."""

    before: int = 0
    after: int = 0


@dataclass(frozen=True, slots=True)
class Query:
    """A whole availability question."""

    groups: tuple[Group, ...]
    duration: int  # required_duration, seconds (>= 60)
    query_periods: tuple[Span, ...]
    buffer: Buffer = field(default_factory=Buffer)
    start_interval: int | None = None  # seconds; None: any second (periods), duration (slots)
    response_format: ResponseFormat = "periods"
    max_results: int | None = None
    explain_at: int | None = None  # Calgate's extension: say why this second is (not) free

    @property
    def members(self) -> tuple[Member, ...]:
        """Every member once, in the order first named."""
        seen: dict[str, Member] = {}
        for group in self.groups:
            for member in group.members:
                seen.setdefault(member.sub, member)
        return tuple(seen.values())

    @property
    def window(self) -> Span:
        """From the first query period's start to the last one's end."""
        return (min(s for s, _ in self.query_periods), max(e for _, e in self.query_periods))

    @property
    def grid(self) -> int | None:
        """The spacing of candidate starts: the start interval, else the duration for slots,
        else none (periods start at any second)."""
        if self.start_interval is not None:
            return self.start_interval
        return None if self.response_format == "periods" else self.duration


__all__ = ["ALL", "Buffer", "Group", "Member", "Query", "ResponseFormat"]
