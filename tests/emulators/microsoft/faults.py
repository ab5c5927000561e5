"""Fault injection and the request log: "the next N Graph requests of this mailbox (and
path, method) answer 429, 503 or 504 with Retry-After, unapplied", "apply the next
matching request, then lose its answer" (for idempotency tests), or "apply the next
matching request, then hold its answer until the test releases it" (for races)."""

from __future__ import annotations

import re
import threading
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


HOLD_LIMIT = 120.0  # seconds: a test that never releases a hold does not wedge the server


@dataclass
class Hold:
    """The next answer of this kind (``delta``, ``events.create``, ...) to the mailbox, for a
    request that carries ``query`` (a parameter name), is held after it was computed: the
    client waits, mid-call, until :meth:`release`. ``reached`` is set when it is held."""

    user: str
    kind: str
    query: str | None
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    taken: bool = False

    def matches(self, entry: LoggedRequest) -> bool:
        return not self.taken and entry.user == self.user and entry.kind == self.kind \
            and (self.query is None or self.query in entry.query)

    def release(self) -> None:
        self.released.set()

    def wait(self) -> None:
        self.reached.set()
        self.released.wait(HOLD_LIMIT)


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)

    def take_hold(self, entry: LoggedRequest) -> Hold | None:
        for hold in self.holds:
            if hold.matches(entry):
                hold.taken = True
                return hold
        return None

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
        for hold in self.holds:
            hold.release()
        self.holds.clear()
