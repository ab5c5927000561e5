"""``POST /v1/availability`` (API.md s8.1): Cronofy's Availability Query, from the mirror.

Authenticated either by an account's access token (scope ``read_free_busy``; the members
may then be that account only) or, as Cronofy's current docs do, by the client app's secret
as a bearer token (the members are any of the app's own accounts, named by ``sub``). The
answer is Cronofy's; Calgate adds ``calgate_unavailable_members`` (members it cannot answer
for, never silently free) and, with ``explain``, ``calgate_explanation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..domain.availability.engine import Available
from ..domain.availability.explain import Explanation, Obstacle
from ..domain.availability.intervals import moment
from ..services.availability import (
    Answer,
    AvailabilityService,
    Caller,
    UnknownMember,
    UnknownMemberCalendar,
)
from ..services.reads import utc_time
from .app_auth import AppAuthenticator
from .auth import Authenticator
from .availability_body import parse
from .errors import ApiError
from .params import InvalidParam, read_params

SCOPE = "read_free_busy"


async def identify(request: Request, authenticate: Authenticator,
                   authenticate_app: AppAuthenticator) -> Caller:
    """Who asks an availability question: an account's access token (scope
    ``read_free_busy``) is tried first, then the client app's secret as the bearer."""
    try:
        caller = await authenticate(request, SCOPE)
    except ApiError as exc:
        if exc.status != 401:
            raise
        return Caller(await authenticate_app(request))
    return Caller(caller.client_id, caller.subject, "read_events" in caller.grants)


def routes_for(authenticate: Authenticator, authenticate_app: AppAuthenticator,
               service: AvailabilityService) -> list[Route]:
    """The route over ``service``; both kinds of bearer are tried, the access token first."""

    async def availability(request: Request) -> Response:
        caller = await identify(request, authenticate, authenticate_app)
        parsed = parse(await read_params(request))
        try:
            answer = await service.answer(parsed.query, caller, parsed.tentative_busy)
        except UnknownMember as exc:
            raise InvalidParam("participants.members.sub", "unknown_sub",
                               f"{exc.sub} is not an account this caller may ask about"
                               ) from None
        except UnknownMemberCalendar as exc:
            raise InvalidParam("participants.members.calendar_ids", "unknown_calendar",
                               f"{exc.calendar_id} is not a calendar of {exc.sub}") from None
        return JSONResponse(render(answer, parsed.query.response_format))

    return [Route("/v1/availability", availability, methods=["POST"])]


def render(answer: Answer, response_format: str) -> dict[str, Any]:
    key = "available_periods" if response_format == "periods" else "available_slots"
    body: dict[str, Any] = {key: [_item(a) for a in answer.items]}
    if answer.unavailable:
        body["calgate_unavailable_members"] = [
            {"sub": u.sub, "reason": u.reason}
            | ({"profile_id": u.profile_id} if u.profile_id else {})
            for u in answer.unavailable]
    if answer.explanation is not None:
        body["calgate_explanation"] = _explanation(answer.explanation, answer.summaries)
    return body


def _item(item: Available) -> dict[str, Any]:
    return {"start": utc_time(moment(item.start)), "end": utc_time(moment(item.end)),
            "participants": [{"sub": s} for s in item.participants]}


def _explanation(why: Explanation, texts: Mapping[str, str] | None) -> dict[str, Any]:
    return {"start": utc_time(moment(why.at)), "end": utc_time(moment(why.end)),
            "bookable": why.offered, "off_grid": why.off_grid,
            "members": [{"sub": sub, "free": not found,
                         "reasons": [_obstacle(o, texts) for o in found]}
                        for sub, found in why.members],
            "groups": [{"free": free, "required": needed} for free, needed in why.groups]}


def _obstacle(o: Obstacle, texts: Mapping[str, str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": o.reason}
    if o.detail:
        body["detail"] = o.detail
    if o.event is not None:
        body |= {"calendar_id": o.event.calendar_id, "event_uid": o.event.event_uid,
                 "status": o.event.status}
        if texts is not None and o.event.event_uid in texts:
            body["summary"] = texts[o.event.event_uid]
    return body
