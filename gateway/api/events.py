"""Read events and free/busy (API.md s5, s7), paged by sealed ``next_page`` URLs (s5.3).

A ``next_page`` URL is ``{base}/v1/events/pages/{opaque}``: the resolved query, the page
number and where it continues, sealed (authenticated encryption) by the composition root's
pager and bound to the caller's subject and client. Anything the page URL itself carries
(Node appends leftover options as a query string) is ignored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.registry import read_extra_flags

from ..services.pagecache import PageCache
from ..services.reads import Key, Page, ReadQuery, ReadService, UnknownCalendar
from .auth import Authenticator, Caller
from .errors import forbidden, not_found
from .params import InvalidParam, Params, read_params

PAGE_TTL = 3600  # seconds a next_page URL stays usable


class Pager(Protocol):
    """Seals paging state into URL-safe strings (``oauth_server.crypto.ServerKeys``)."""

    def seal(self, purpose: str, data: dict[str, Any]) -> str: ...
    def unseal(self, purpose: str, sealed: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class _Kind:
    key: str  # the wrapper key of the response
    pages_path: str
    purpose: str  # a page token of one kind never opens the other


EVENTS = _Kind("events", "/v1/events/pages/", "calgate/events-page")
FREE_BUSY = _Kind("free_busy", "/v1/free_busy/pages/", "calgate/free-busy-page")


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """The days before and after today that the mirror holds (a read's default range)."""

    days_back: int
    days_ahead: int


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The read endpoints over their services, bound when the routes are built."""

    authenticate: Authenticator
    reads: ReadService
    cache: PageCache | None  # rendered pages (None: the cache is off)
    pager: Pager
    window: SyncWindow

    async def read_events(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        params = await read_params(request)
        _require_events_scope(caller, params.flag("only_managed"))
        query = _query(params, self.window, events=True)
        return await self._respond(request, caller, EVENTS, query, 1, None)

    async def events_page(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        query, page, after = self._resume(request, caller, EVENTS)
        _require_events_scope(caller, query.only_managed)
        return await self._respond(request, caller, EVENTS, query, page, after)

    async def free_busy(self, request: Request) -> Response:
        caller = await self.authenticate(request, "read_free_busy")
        params = await read_params(request)
        query = _query(params, self.window, events=False)
        return await self._respond(request, caller, FREE_BUSY, query, 1, None)

    async def free_busy_page(self, request: Request) -> Response:
        caller = await self.authenticate(request, "read_free_busy")
        query, page, after = self._resume(request, caller, FREE_BUSY)
        return await self._respond(request, caller, FREE_BUSY, query, page, after)

    async def _respond(self, request: Request, caller: Caller, kind: _Kind, query: ReadQuery,
                       page: int, after: Key | None) -> Response:
        reads, cache = self.reads, self.cache
        text = "read_events" in caller.grants
        if kind is EVENTS:
            read = partial(reads.events, caller.subject, query, page=page, after=after,
                           text=text)
        else:
            read = partial(reads.free_busy, caller.subject, query, page=page, after=after)
        key = (kind.key, caller.subject, caller.client_id, query, page, after, text,
               str(request.base_url))

        def render() -> bytes:
            generation = reads.generation(caller.subject) if cache is not None else None
            if cache is not None and generation is not None:
                cached = cache.get(key, generation)
                if cached is not None:
                    return cached
            result = read()
            pages: dict[str, Any] = {"current": result.current, "total": result.total}
            if result.after is not None:
                pages["next_page"] = self._next_page(request, caller, kind, query, result)
            body = json.dumps({"pages": pages, kind.key: result.items}, ensure_ascii=False,
                              allow_nan=False, separators=(",", ":")).encode()
            if cache is not None and generation is not None:
                cache.put(key, generation, body)
            return body

        try:
            body = await to_thread.run_sync(render)
        except UnknownCalendar:
            raise not_found() from None
        return Response(body, media_type="application/json")

    def _next_page(self, request: Request, caller: Caller, kind: _Kind, query: ReadQuery,
                   result: Page) -> str:
        assert result.after is not None
        token = self.pager.seal(kind.purpose, {
            "sub": caller.subject, "client": caller.client_id, "query": query.to_dict(),
            "page": result.current + 1,
            "after": [result.after[0].isoformat(), result.after[1]],
            "exp": int(time.time()) + PAGE_TTL})
        return f"{str(request.base_url).rstrip('/')}{kind.pages_path}{token}"

    def _resume(self, request: Request, caller: Caller, kind: _Kind
                ) -> tuple[ReadQuery, int, Key]:
        """The state sealed in a page URL; 404 if it was tampered with, is someone else's,
        or has expired."""
        data = self.pager.unseal(kind.purpose, request.path_params["token"])
        if (data is None or data.get("sub") != caller.subject
                or data.get("client") != caller.client_id
                or data.get("exp", 0) < time.time()):
            raise not_found()
        try:
            after = (datetime.fromisoformat(data["after"][0]), int(data["after"][1]))
            return ReadQuery.from_dict(data["query"]), int(data["page"]), after
        except (KeyError, TypeError, ValueError):
            raise not_found() from None


def routes_for(authenticate: Authenticator, reads: ReadService, cache: PageCache | None,
               pager: Pager, window: SyncWindow) -> list[Route]:
    """The read routes over their services, built once (create_app)."""
    handlers = _Handlers(authenticate, reads, cache, pager, window)
    return [
        Route("/v1/events", handlers.read_events, methods=["GET"]),
        Route("/v1/events/pages/{token}", handlers.events_page, methods=["GET"]),
        Route("/v1/free_busy", handlers.free_busy, methods=["GET"]),
        Route("/v1/free_busy/pages/{token}", handlers.free_busy_page, methods=["GET"]),
    ]


def _require_events_scope(caller: Caller, only_managed: bool) -> None:
    """``read_events``; or, for the app's own events only, a scope that writes them."""
    if "read_events" in caller.grants:
        return
    if only_managed and caller.grants & {"create_event", "delete_event"}:
        return
    raise forbidden("read_events",
                    'Bearer realm="calgate", error="insufficient_scope", scope="read_events"')


def _query(params: Params, window: SyncWindow, *, events: bool) -> ReadQuery:
    tzid = params.tzid()
    zone = ZoneInfo(tzid)
    flags: dict[str, Any] = {"include_managed": params.flag("include_managed"),
                             "calendar_ids": params.strings("calendar_ids"),
                             "localized_times": params.flag("localized_times")}
    if events:
        flags |= {"include_geo": params.flag("include_geo"),
                  "last_modified": params.time("last_modified"),
                  "include_deleted": params.flag("include_deleted"),
                  "include_moved": params.flag("include_moved"),
                  "only_managed": params.flag("only_managed"),
                  "extras": tuple(f for f in read_extra_flags() if params.flag(f))}
    else:
        flags |= {"include_ids": params.flag("include_ids"),
                  "include_free": params.flag("include_free")}
    query = ReadQuery.build(tzid, params.moment("from", zone), params.moment("to", zone),
                            days_back=window.days_back,
                            days_ahead=window.days_ahead, **flags)
    if query.end < query.start:  # an empty answer would hide the client's mistake
        raise InvalidParam("to", "before_from",
                           "to must not be before from (default: the sync window's start)")
    return query
