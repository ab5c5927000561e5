"""Calendars: ``GET /v1/calendars`` from the mirror, ``POST /v1/calendars`` upstream (API.md s4)."""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services import calendars as service
from .auth import Authenticator
from .errors import ApiError, not_found
from .params import InvalidParam, read_params


def routes_for(authenticate: Authenticator, calendars: service.CalendarService) -> list[Route]:
    """The routes over ``calendars``, built once with the provider settings (Gateway.build)."""

    async def list_calendars(request: Request) -> Response:
        caller = await authenticate(request, "list_calendars")
        listed = await to_thread.run_sync(calendars.list_calendars, caller.subject)
        return JSONResponse({"sub": caller.subject, "calendars": listed})

    async def create_calendar(request: Request) -> Response:
        caller = await authenticate(request, "create_calendar")
        params = await read_params(request)
        profile_id = params.text("profile_id", required=True)
        name = params.text("name", required=True)
        assert profile_id is not None and name is not None
        try:
            created = await calendars.create_calendar(caller.subject, profile_id, name,
                                                      params.text("color"))
        except service.CalendarError as exc:
            raise _refusal(exc) from None
        return JSONResponse({"calendar": created})

    return [Route("/v1/calendars", list_calendars, methods=["GET"]),
            Route("/v1/calendars", create_calendar, methods=["POST"])]


def _refusal(exc: service.CalendarError) -> ApiError:
    """Always a JSON body: pycronofy parses ``errors.name[0].key`` of any failure here."""
    if isinstance(exc, service.ProfileNotFound):
        return not_found()
    if isinstance(exc, service.DuplicateCalendarName):
        return InvalidParam("name", "duplicate_calendar_name",
                            "A calendar with this name already exists")
    if isinstance(exc, service.CreateNotSupported):
        return InvalidParam("name", "not_supported",
                            "This profile's provider does not support creating calendars")
    if isinstance(exc, service.InvalidCalendarName):
        return InvalidParam("name", "invalid", "The provider refused this calendar name")
    if isinstance(exc, service.ProfileNeedsRelink):
        return ApiError(423, {"error": "relink_required"})
    retry = exc.retry_after if isinstance(exc, service.UpstreamUnavailable) else None
    return ApiError(503, {"error": "provider_unavailable"},
                    {"Retry-After": str(int(retry or 30))})
