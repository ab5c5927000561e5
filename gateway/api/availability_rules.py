"""Managed availability (API.md s8.3): availability rules and available periods.

Any access token of the account may manage them: Cronofy's reference asks for no particular
scope, and they are the app's statement of when the person works, not calendar data. The
client secret is not accepted here (the account is the token's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.availability_rules import (
    AvailabilityError,
    AvailabilityRuleService,
    Period,
    PeriodPage,
)
from .auth import Authenticator, Caller
from .errors import not_found
from .events import PAGE_TTL, Pager
from .params import InvalidParam, Params, find_zone, read_params
from .rules_body import app_id, period_from, rule_from

PAGES_PATH = "/v1/available_periods/pages/"
RULE_PATH = "/v1/availability_rules/{availability_rule_id}"
PURPOSE = "calgate/available-periods-page"


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The managed-availability endpoints over their store, bound when routes are built."""

    authenticate: Authenticator
    store: AvailabilityRuleService
    pager: Pager

    async def upsert_rule(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        rule = rule_from(await read_params(request))
        try:
            await to_thread.run_sync(self.store.upsert_rule, caller.subject, rule)
        except AvailabilityError as exc:
            raise InvalidParam(exc.field, exc.code, exc.description) from None
        return JSONResponse({"availability_rule": rule.as_json()})

    async def list_rules(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        rules = await to_thread.run_sync(self.store.list_rules, caller.subject)
        return JSONResponse({"availability_rules": [r.as_json() for r in rules]})

    async def read_rule(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        rule = await to_thread.run_sync(self.store.find_rule, caller.subject,
                                        request.path_params["availability_rule_id"])
        if rule is None:
            raise not_found()
        return JSONResponse({"availability_rule": rule.as_json()})

    async def delete_rule(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        if not await to_thread.run_sync(self.store.delete_rule, caller.subject,
                                        request.path_params["availability_rule_id"]):
            raise not_found()
        return Response(status_code=202)

    async def upsert_period(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        period = period_from(await read_params(request))
        try:
            await to_thread.run_sync(self.store.upsert_period, caller.subject, period)
        except AvailabilityError as exc:
            raise InvalidParam(exc.field, exc.code, exc.description) from None
        return Response(status_code=202)

    async def delete_periods(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        params = await read_params(request)
        every = params.flag("delete_all")
        if every == params.given("available_period_id"):
            raise InvalidParam("available_period_id", "invalid",
                               "give either available_period_id or delete_all: true")
        period_id = None if every else app_id(params, "available_period_id")
        await to_thread.run_sync(self.store.delete_periods, caller.subject, period_id)
        return Response(status_code=202)

    async def list_periods(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        query = _PeriodQuery.from_params(await read_params(request))
        return await self._page(request, caller, query, 1, None)

    async def periods_page(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        data = self.pager.unseal(PURPOSE, request.path_params["token"])
        if (data is None or data.get("sub") != caller.subject
                or data.get("client") != caller.client_id or data.get("exp", 0) < time.time()):
            raise not_found()
        try:
            after = (datetime.fromisoformat(data["after"][0]), str(data["after"][1]))
            query = _PeriodQuery.from_dict(data["query"])
            page = int(data["page"])
        except (KeyError, TypeError, ValueError):
            raise not_found() from None
        return await self._page(request, caller, query, page, after)

    async def _page(self, request: Request, caller: Caller, query: _PeriodQuery, page: int,
                    after: tuple[datetime, str] | None) -> Response:
        found: PeriodPage = await to_thread.run_sync(partial(
            self.store.list_periods, caller.subject, query.start, query.end, page, after))
        pages: dict[str, Any] = {"current": found.current, "total": found.total}
        if found.after is not None:
            token = self.pager.seal(PURPOSE, {
                "sub": caller.subject, "client": caller.client_id, "query": query.to_dict(),
                "page": page + 1, "after": [found.after[0].isoformat(), found.after[1]],
                "exp": int(time.time()) + PAGE_TTL})
            pages["next_page"] = f"{str(request.base_url).rstrip('/')}{PAGES_PATH}{token}"
        return JSONResponse({"pages": pages, "available_periods": [
            query.render(p) for p in found.periods]})


@dataclass(frozen=True, slots=True)
class _PeriodQuery:
    """``from``/``to`` (Dates in ``tzid``, ``to`` exclusive) and how times are written."""

    start: datetime | None
    end: datetime | None
    tzid: str
    localized: bool

    @classmethod
    def from_params(cls, params: Params) -> _PeriodQuery:
        tzid = params.tzid() if params.given("tzid") else "Etc/UTC"
        zone = find_zone(tzid)
        assert zone is not None
        start, end = params.moment("from", zone), params.moment("to", zone)
        if start is not None and end is not None and end <= start:
            raise InvalidParam("to", "invalid", "to must be after from")
        return cls(start, end, tzid, params.flag("localized_times"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _PeriodQuery:
        def moment(value: Any) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return cls(moment(data["start"]), moment(data["end"]), str(data["tzid"]),
                   bool(data["localized"]))

    def to_dict(self) -> dict[str, Any]:
        return {"start": None if self.start is None else self.start.isoformat(),
                "end": None if self.end is None else self.end.isoformat(),
                "tzid": self.tzid, "localized": self.localized}

    def render(self, period: Period) -> dict[str, str]:
        zone = find_zone(self.tzid) if self.localized else None
        return {"available_period_id": period.period_id, "start": _time(period.start, zone),
                "end": _time(period.end, zone)}


def _time(value: datetime, zone: ZoneInfo | None) -> str:
    if zone is None:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.astimezone(zone).isoformat(timespec="seconds")


def routes_for(authenticate: Authenticator, store: AvailabilityRuleService, pager: Pager
               ) -> list[Route]:
    """The managed-availability routes over their store, built once (create_app)."""
    handlers = _Handlers(authenticate, store, pager)
    return [
        Route("/v1/availability_rules", handlers.upsert_rule, methods=["POST"]),
        Route("/v1/availability_rules", handlers.list_rules, methods=["GET"]),
        Route(RULE_PATH, handlers.read_rule, methods=["GET"]),
        Route(RULE_PATH, handlers.delete_rule, methods=["DELETE"]),
        Route("/v1/available_periods", handlers.upsert_period, methods=["POST"]),
        Route("/v1/available_periods", handlers.list_periods, methods=["GET"]),
        Route("/v1/available_periods", handlers.delete_periods, methods=["DELETE"]),
        Route(PAGES_PATH + "{token}", handlers.periods_page, methods=["GET"]),
    ]
