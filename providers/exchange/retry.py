"""Which EWS failures are tried again, and after how long.

exchangelib runs with its ``FailFast`` policy, and Calgate retries here instead. Its other
policy, ``FaultTolerance``, would sleep out ``ErrorServerBusy`` hints and 503s, but it also
takes every HTTP 401 for throttling and retries it for up to ``max_wait`` (an hour by
default): a changed password would then look like a slow server instead of disconnecting
the profile. So, with the request failed fast:

* ``ErrorServerBusy`` (Exchange's throttling fault): wait the ``BackOffMilliseconds`` hint it
  carries, then try again; a hint longer than :data:`LONGEST_WAIT` is not slept out in a
  worker thread but handed to the scheduler (``RateLimited.retry_after``).
* HTTP 503 and a connection reset (the request never reached the mailbox, or its answer
  was lost): exponential back-off from :data:`FIRST_WAIT`.
* Anything else (a refused connection, a timeout, TLS, 401, an EWS error code) is not
  retried here: it is the caller's to handle.

At most :data:`ATTEMPTS` tries in all; the last failure is then raised (as a retryable
provider error: ``RateLimited`` or ``Unavailable``). Retrying a whole call is safe: reads
repeat, and writes are idempotent (managed events are found again by their key).
"""

from __future__ import annotations

import http.client

import requests
from exchangelib import errors as ews
from urllib3.exceptions import ProtocolError

ATTEMPTS = 4
FIRST_WAIT = 0.5  # seconds before the first retry of a 503 or a reset; doubled each time
LONGEST_WAIT = 30.0  # a longer ErrorServerBusy hint goes to the scheduler instead


def wait_before_retry(exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before trying again after ``exc`` failed try number ``attempt``
    (0-based); None: do not retry."""
    if attempt + 1 >= ATTEMPTS:
        return None
    if _transient(exc):
        return float(FIRST_WAIT * 2 ** attempt)
    hint = busy_hint(exc)
    if hint is not None and hint <= LONGEST_WAIT:
        return hint
    return None


def busy_hint(exc: BaseException) -> float | None:
    """The back-off Exchange asked for with ``ErrorServerBusy`` (seconds); None for other
    failures. exchangelib also raises ErrorServerBusy for failures it would retry under
    ``FaultTolerance`` (a 503, a lost connection), with a hint of its own: those are
    recognised by their cause and are not the server's hint."""
    if not isinstance(exc, ews.ErrorServerBusy) or _transient(exc):
        return None
    return float(exc.back_off) if exc.back_off is not None else FIRST_WAIT


def _transient(exc: BaseException) -> bool:
    """A 503 from the server (or the load balancer in front of it) or a connection reset:
    the chain of causes names it."""
    seen: BaseException | None = exc
    for _ in range(8):  # chains are short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, ews.ErrorInternalServerTransientError):
            return True
        if isinstance(seen, ConnectionResetError | http.client.RemoteDisconnected
                      | ProtocolError | requests.exceptions.ChunkedEncodingError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
