"""Writes: upsert and delete managed events, bulk delete (API.md s6). Answer 202 once durable.

``Prefer: wait=N`` (RFC 7240, N ≤ 30) waits for the write to be applied upstream and then
answers 200 with the resulting event, or 202 if it is not done in N seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.external_writes import ExternalWriteService, NotEditable, NotPermitted
from ..services.reads import ReadService
from ..services.writes import (
    PARTICIPATION,
    AttendeesNotInvited,
    CalendarNotFound,
    CalendarReadOnly,
    EventNotFound,
    Unsupported,
    WriteService,
)
from .auth import Authenticator, Caller, Wake
from .errors import ApiError, not_found
from .event_body import event_upsert, valid_event_id
from .external_body import event_patch
from .identity import Userinfo
from .params import InvalidParam, Params, read_params

T = TypeVar("T")

WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The write endpoints over their services, bound when the routes are built."""

    authenticate: Authenticator
    writes: WriteService
    reads: ReadService
    wake: Wake
    userinfo: Userinfo
    external: ExternalWriteService | None = None

    async def upsert_event(self, request: Request) -> Response:
        caller = await self.authenticate(request, "create_event")
        params = await read_params(request)
        if self._external(params):  # an event the app did not create (API.md s6.3)
            return await self._external_write(request, caller.subject, params, delete=False)
        event_id = event_id_of(params)
        desired = event_upsert(params)
        calendar_id = request.path_params["calendar_id"]
        written = await _record(partial(self.writes.upsert, caller.subject, calendar_id,
                                        event_id, desired))
        answer = await self._answer(request, written, (caller.subject, calendar_id, event_id))
        return await self._with_userinfo(params, caller, answer)

    async def delete_event(self, request: Request) -> Response:
        caller = await self.authenticate(request, "delete_event")
        params = await read_params(request)
        if self._external(params):
            return await self._external_write(request, caller.subject, params, delete=True)
        event_id = event_id_of(params)
        written = await _record(partial(self.writes.delete, caller.subject,
                                        request.path_params["calendar_id"], event_id))
        answer = await self._answer(request, written, None)
        return await self._with_userinfo(params, caller, answer)

    async def _with_userinfo(self, params: Params, caller: Caller,
                             answer: Response) -> Response:
        """``include_userinfo=true`` (API.md s6.1): the answer is 200 and its body carries
        ``userinfo``, exactly what ``GET /v1/userinfo`` would answer (beside the ``event``
        of an upsert applied within ``Prefer: wait``; ``Preference-Applied`` says whether
        it was). A status of its own, so each status keeps one documented body."""
        if not params.flag("include_userinfo"):
            return answer
        body = json.loads(bytes(answer.body)) if answer.body else {}
        body["userinfo"] = await self.userinfo.document(caller)
        headers = {k: v for k, v in answer.headers.items()
                   if k.lower() not in {"content-length", "content-type"}}
        return JSONResponse(body, status_code=200, headers=headers)

    async def bulk_delete(self, request: Request) -> Response:
        caller = await self.authenticate(request, "delete_event")
        params = await read_params(request)
        delete_all, calendar_ids = params.flag("delete_all"), params.strings("calendar_ids")
        if delete_all and calendar_ids:
            raise InvalidParam("delete_all", "exclusive",
                               "send delete_all or calendar_ids, not both")
        if not delete_all and not calendar_ids:
            raise InvalidParam("calendar_ids", "required", "send delete_all or calendar_ids")
        await _record(partial(self.writes.bulk_delete, caller.subject,
                              None if delete_all else calendar_ids))
        await self.wake()
        return Response(status_code=202)

    async def participation_status(self, request: Request) -> Response:
        caller = await self.authenticate(request, "change_participation_status")
        status = (await read_params(request)).text("status", required=True)
        if status not in PARTICIPATION:
            raise InvalidParam("status", "invalid", "status is accepted, tentative or declined")
        await _record(partial(self.writes.answer, caller.subject,
                              request.path_params["calendar_id"],
                              request.path_params["event_uid"], status))
        await self.wake()
        return Response(status_code=202)

    def _external(self, params: Params) -> bool:
        return self.external is not None and is_external(params)

    async def _external_write(self, request: Request, subject: str, params: Params, *,
                              delete: bool) -> Response:
        assert self.external is not None
        await _record(external_write(self.external, subject,
                                     request.path_params["calendar_id"], params,
                                     delete=delete))
        await self.wake()
        return Response(status_code=202)  # Prefer: wait is for the app's own events

    async def _answer(self, request: Request, written: tuple[int, int] | None,
                      event: tuple[str, str, str] | None) -> Response:
        """202 at once, or with ``Prefer: wait=N`` 200 once applied upstream (202 if not
        in N s)."""
        await self.wake()
        seconds = _wait(request)
        if not seconds or written is None:
            return Response(status_code=202)
        with anyio.move_on_after(seconds):
            while not await to_thread.run_sync(self.writes.applied, *written):
                await anyio.sleep(0.05)
            applied = {"Preference-Applied": f"wait={seconds}"}
            if event is None:  # a delete: nothing to show but that it is done
                return JSONResponse({}, headers=applied)
            body = await to_thread.run_sync(self.reads.managed_event, *event)
            return JSONResponse({"event": body}, headers=applied)
        return Response(status_code=202)


def routes_for(authenticate: Authenticator, writes: WriteService, reads: ReadService,
               wake: Wake, userinfo: Userinfo,
               external: ExternalWriteService | None = None) -> list[Route]:
    """The write routes over their services, built once (create_app)."""
    handlers = _Handlers(authenticate, writes, reads, wake, userinfo, external)
    return [
        Route("/v1/calendars/{calendar_id}/events", handlers.upsert_event, methods=["POST"]),
        Route("/v1/calendars/{calendar_id}/events", handlers.delete_event,
              methods=["DELETE"]),
        Route("/v1/events", handlers.bulk_delete, methods=["DELETE"]),
        Route("/v1/calendars/{calendar_id}/events/{event_uid}/participation_status",
              handlers.participation_status, methods=["POST"]),
    ]


def is_external(params: Params) -> bool:
    """``event_uid`` without ``event_id``: a write to an event the app did not create
    (API.md s6.3; ``event_id`` wins when both are sent)."""
    return params.raw("event_id") is None and params.raw("event_uid") is not None


def external_write(external: ExternalWriteService, subject: str, calendar_id: str,
                   params: Params, *, delete: bool) -> Callable[[], tuple[int, int]]:
    """The external event write the body asks for, validated now, as a blocking call that
    raises the API's refusals (the single endpoints and batch entries share it)."""
    event_uid = params.text("event_uid", required=True)
    assert event_uid is not None
    if delete:
        write = partial(external.delete, subject, calendar_id, event_uid)
    else:
        write = partial(external.patch, subject, calendar_id, event_uid, event_patch(params))

    def call() -> tuple[int, int]:
        try:
            return write()
        except NotPermitted:
            raise ApiError(403, {"error": "insufficient_permission", "description":
                                 "changing events the app did not create needs elevated "
                                 "permissions for this calendar (POST /v1/permissions)"}
                           ) from None
        except NotEditable as exc:
            raise InvalidParam("event_uid", "not_editable", exc.reason) from None

    return call


def event_id_of(params: Params) -> str:
    """The client's ``event_id`` (required); an ``event_uid`` (an external event) is 403."""
    event_id = params.text("event_id")
    if event_id is not None:
        return valid_event_id(event_id)
    if params.text("event_uid"):
        raise ApiError(403, {"error": "insufficient_permission",
                             "description": "editing external events needs elevated "
                                            "permissions, which Calgate does not grant yet"})
    raise InvalidParam("event_id", "required", "event_id must be specified")


async def _record(call: Callable[[], T]) -> T:
    try:
        return await to_thread.run_sync(call)
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


def no_invitations() -> InvalidParam:
    return InvalidParam("attendees", "not_supported",
                        "this calendar cannot invite attendees (an application calendar)")


def _wait(request: Request) -> int:
    match = WAIT.search(request.headers.get("prefer", ""))
    return min(int(match.group(1)), 30) if match else 0
