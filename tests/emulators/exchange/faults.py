"""What the emulator answers instead of an operation's result, when a test asks: a lost
answer (applied, then the connection closes), an error response code, Exchange's throttling
fault (``ErrorServerBusy`` with its ``BackOffMilliseconds`` hint), an HTTP status (503 from
a load balancer) or a connection reset before anything is applied."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .soap import envelope

_ERRORS_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"
_TYPES_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
BUSY_TEXT = "The server cannot service this request right now. Try again later."


@dataclass(frozen=True)
class Injected:
    """What the next request of an operation gets: at most one of these applies, in the
    order reset, HTTP status, busy, error; ``drop`` loses the answer of an applied one."""

    reset: bool = False
    status: int | None = None
    busy_ms: int | None = None
    code: str | None = None
    drop: bool = False


@dataclass
class Faults:
    """Per operation: queues of what its next requests get instead of their answers."""

    drop: dict[str, int] = field(default_factory=dict)  # answers to lose (applied)
    errors: dict[str, list[str]] = field(default_factory=dict)  # response codes
    busy: dict[str, list[int]] = field(default_factory=dict)  # back-off hints, ms
    statuses: dict[str, list[int]] = field(default_factory=dict)  # HTTP statuses
    resets: dict[str, int] = field(default_factory=dict)  # connections to reset
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, queue: dict[str, list[int]] | dict[str, list[str]], op: str,
            values: list[int] | list[str]) -> None:
        with self._lock:
            queue.setdefault(op, []).extend(values)  # type: ignore[arg-type]

    def count(self, queue: dict[str, int], op: str, count: int) -> None:
        with self._lock:
            queue[op] = queue.get(op, 0) + count

    def take(self, op: str) -> Injected:
        with self._lock:
            if self.resets.get(op, 0):
                self.resets[op] -= 1
                return Injected(reset=True)
            if self.statuses.get(op):
                return Injected(status=self.statuses[op].pop(0))
            if self.busy.get(op):
                return Injected(busy_ms=self.busy[op].pop(0))
            if self.errors.get(op):
                return Injected(code=self.errors[op].pop(0))
            drop = self.drop.get(op, 0)
            if drop:
                self.drop[op] = drop - 1
            return Injected(drop=bool(drop))

    def clear(self) -> None:
        with self._lock:
            for queue in (self.drop, self.errors, self.busy, self.statuses, self.resets):
                queue.clear()


def server_busy(back_off_ms: int) -> bytes:
    """Exchange's throttling answer: a SOAP fault (HTTP 500) whose detail carries the
    back-off hint, as Exchange 2016 writes it."""
    return envelope(
        f'<s:Fault><faultcode xmlns:a="{_TYPES_NS}">a:ErrorServerBusy</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(BUSY_TEXT)}</faultstring><detail>'
        f'<e:ResponseCode xmlns:e="{_ERRORS_NS}">ErrorServerBusy</e:ResponseCode>'
        f'<e:Message xmlns:e="{_ERRORS_NS}">{escape(BUSY_TEXT)}</e:Message>'
        f'<t:MessageXml xmlns:t="{_TYPES_NS}"><t:Value Name="BackOffMilliseconds">'
        f"{back_off_ms}</t:Value></t:MessageXml></detail></s:Fault>")
