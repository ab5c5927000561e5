"""Fault injection and the request log: "the next N Graph requests of this mailbox (and
path, method) answer 429, 503 or 504 with Retry-After, unapplied", or "apply the next
matching request, then lose its answer" (for idempotency tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import GraphError

_CODES = {429: ("TooManyRequests", "Application is over its MailboxConcurrency limit."),
          503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
          504: ("UnknownError", "Gateway timeout.")}


@dataclass
class Fault:
    user: str | None  # the mailbox; None: any
    path: re.Pattern[str]
    method: str | None
    status: int  # 0 with drop_answer
    retry_after: int | None
    remaining: int
    drop_answer: bool = False

    def matches(self, user: str | None, method: str, path: str) -> bool:
        return self.remaining > 0 and (self.user is None or self.user == user) \
            and (self.method is None or self.method == method) \
            and self.path.search(path) is not None

    def error(self) -> GraphError:
        code, message = _CODES.get(self.status, ("UnknownError", "Injected failure."))
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return GraphError(self.status, code, message, headers)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    kind: str = "other"  # "token", "authorize", "delta", "events.create", ...
    user: str | None = None
    status: int = 0  # 0: no answer (dropped)
    injected: bool = False


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def take(self, user: str | None, method: str, path: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(user, method, path):
                fault.remaining -= 1
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()
