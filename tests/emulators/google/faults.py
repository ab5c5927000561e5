"""Fault injection and the request log, so tests can make "the next N requests like this"
fail the way Google fails (403 rateLimitExceeded/userRateLimitExceeded with or without
Retry-After, 429, 500, 503, or an answer lost after the request was applied) and can assert
exactly which requests were made."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ApiError, backend, quota


@dataclass
class Fault:
    path: re.Pattern[str]  # searched in the request path
    method: str | None
    status: int  # 0 with drop_answer
    reason: str | None
    retry_after: float | None
    remaining: int
    drop_answer: bool = False  # apply the request, then close the connection unanswered

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and (self.method is None or self.method == method) \
            and self.path.search(path) is not None

    def error(self) -> ApiError:
        if self.status == 429:
            return quota(429, self.reason or "rateLimitExceeded", self.retry_after)
        if self.status == 403:
            return quota(403, self.reason or "rateLimitExceeded", self.retry_after)
        if self.status >= 500:
            return backend(self.status, self.retry_after)
        return ApiError(self.status, self.reason or "failed", "Injected failure")


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int = 0  # 0: no answer (dropped)
    api_method: str | None = None  # "events.list" for Calendar API calls
    user: str | None = None
    injected: bool = False  # answered by a fault


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, path):
                fault.remaining -= 1
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()
