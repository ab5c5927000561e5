"""``POST /v1/batch`` (API.md s11) and Calgate's batch progress, ``GET /v1/batch/{id}``.

Each entry is dispatched internally to the upsert or delete of API.md s6 and validated
exactly as those endpoints validate; its answer is the status and JSON body the single
request would have had. Cronofy answers 207 with the entries in request order; pycronofy
counts an entry as failed when ``status % 100 != 2``, so an accepted one reports 202.
Calgate adds ``batch_id`` (and a ``Location``) so the app can follow the writes upstream.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.batches import MAX_ENTRIES, BatchProgress, BatchService, EntryResult
from ..services.external_writes import ExternalWriteService
from ..services.reads import utc_time
from ..services.writes import (
    AttendeesNotInvited,
    CalendarNotFound,
    CalendarReadOnly,
    EventNotFound,
    Unsupported,
    WriteService,
)
from .auth import Authenticator, Wake
from .errors import ApiError, not_found
from .event_body import event_upsert
from .guard import BadInput, check_text
from .params import InvalidParam, Params, read_params

# the single-event endpoints' rules, so entries never drift
from .writes import event_id_of, external_write, is_external, no_invitations

T = TypeVar("T")
EVENTS_URL = re.compile(r"/v1/calendars/([^/?#]+)/events")
SCOPES = {"POST": "create_event", "DELETE": "delete_event"}


@dataclass(frozen=True, slots=True)
class _Answer:
    result: EntryResult
    body: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The batch endpoints over their services, bound when the routes are built."""

    authenticate: Authenticator
    writes: WriteService
    batches: BatchService
    wake: Wake
    issuer: str  # the base of the Location of a recorded batch
    external: ExternalWriteService | None = None  # event_uid entries (elevated permissions)

    async def post_batch(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        entries = _entries(await read_params(request))

        def run() -> tuple[list[_Answer], str]:
            answers = [_dispatch(self.writes, self.external, caller.subject, caller.grants,
                                 entry) for entry in entries]
            batch_id, _ = self.batches.record(caller.subject, caller.client_id,
                                              [a.result for a in answers])
            return answers, batch_id

        answers, batch_id = await to_thread.run_sync(run)
        await self.wake()
        location = f"{self.issuer}/v1/batch/{batch_id}"
        return JSONResponse({"batch": [_entry_body(a) for a in answers],
                             "batch_id": batch_id},
                            status_code=207, headers={"Location": location})

    async def get_batch(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        progress = await to_thread.run_sync(self.batches.find_progress, caller.subject,
                                            request.path_params["batch_id"])
        if progress is None:
            raise not_found()
        return JSONResponse({"batch": _progress_body(progress)})


def routes_for(authenticate: Authenticator, writes: WriteService, batches: BatchService,
               wake: Wake, issuer: str, external: ExternalWriteService | None = None
               ) -> list[Route]:
    """The batch routes over their services, built once (create_app)."""
    handlers = _Handlers(authenticate, writes, batches, wake, issuer, external)
    return [
        Route("/v1/batch", handlers.post_batch, methods=["POST"]),
        Route("/v1/batch/{batch_id}", handlers.get_batch, methods=["GET"]),
    ]


def _entries(params: Params) -> list[Any]:
    entries = params.raw("batch")
    if entries is None or entries == []:
        raise InvalidParam("batch", "required", "batch must list at least one entry")
    if not isinstance(entries, list):
        raise InvalidParam("batch", "invalid", "batch must be a list of entries")
    if len(entries) > MAX_ENTRIES:
        raise InvalidParam("batch", "too_long",
                           f"batch has {len(entries)} entries; at most {MAX_ENTRIES} are "
                           "allowed per request")
    return entries


def _dispatch(writes: WriteService, external: ExternalWriteService | None, subject: str,
              grants: frozenset[str], entry: Any) -> _Answer:
    """One entry, as its single request would be answered (blocking: call in a thread)."""
    try:
        method, calendar_id, params = _route(entry)
        if SCOPES[method] not in grants:
            raise ApiError(403, {"error": "insufficient_scope", "required_scope": SCOPES[method]})
        if external is not None and is_external(params):  # an event the app did not create
            queued = _write(external_write(external, subject, calendar_id, params,
                                           delete=method == "DELETE"))
            return _Answer(EntryResult(202, queued, external=True))
        event_id = event_id_of(params)
        if method == "POST":
            desired = event_upsert(params)
            written: tuple[int, int] | None = _write(
                lambda: writes.upsert(subject, calendar_id, event_id, desired))
        else:
            written = _write(lambda: writes.delete(subject, calendar_id, event_id))
    except ApiError as exc:
        return _Answer(EntryResult(exc.status), exc.body)
    return _Answer(EntryResult(202, written))


def _route(entry: Any) -> tuple[str, str, Params]:
    """The entry's method, calendar and parameters; 422 ``errors.unsupported`` for
    anything but an event's upsert or delete (managed, or external with ``event_uid``)."""
    if not isinstance(entry, dict):
        raise InvalidParam("entry", "invalid",
                           "each entry is an object with method, relative_url and data")
    method = entry.get("method")
    if not isinstance(method, str) or method.upper() not in SCOPES:
        raise InvalidParam("method", "unsupported", "method must be POST or DELETE")
    url = entry.get("relative_url")
    match = EVENTS_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise InvalidParam("relative_url", "unsupported",
                           "relative_url must be /v1/calendars/{calendar_id}/events")
    data = entry.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidParam("data", "invalid", "data must be an object")
    calendar_id = unquote(match.group(1))
    try:  # the edge saw "%00" only as text inside the JSON body
        check_text("relative_url", calendar_id)
    except BadInput as exc:
        raise InvalidParam(exc.field, exc.code, exc.description) from None
    return method.upper(), calendar_id, Params.merge((), data)


def _write(call: Callable[[], T]) -> T:
    """The write, its refusals as the single endpoints answer them (api.writes._record)."""
    try:
        return call()
    except CalendarNotFound:
        raise not_found() from None
    except CalendarReadOnly:
        raise ApiError(403, {"error": "calendar_readonly"}) from None
    except Unsupported as exc:
        raise InvalidParam(exc.field, exc.code, exc.description) from None
    except AttendeesNotInvited:
        raise no_invitations() from None
    except EventNotFound:
        raise not_found() from None


def _entry_body(answer: _Answer) -> dict[str, object]:
    if answer.body is None:
        return {"status": answer.result.status}
    return {"status": answer.result.status, "data": answer.body}


def _progress_body(progress: BatchProgress) -> dict[str, object]:
    return {
        "batch_id": progress.batch_id, "created_at": utc_time(progress.created_at),
        "entries": progress.entries, "accepted": progress.accepted,
        "rejected": progress.rejected, "applied": progress.applied,
        "pending": progress.pending, "failed": progress.failed,
        "failures": [{"position": f.position, "error": f.error} for f in progress.failures],
    }
