"""``POST /v1/sequenced_availability`` (API.md s8.2): several events in order, each with its
own participants, duration and buffers, answered from the mirror.

Authenticated as ``POST /v1/availability`` is: an account's access token (scope
``read_free_busy``; the members may then be that account only) or the client app's secret
(any of the app's own accounts). The answer is Cronofy's ``{"sequences": [{"sequence":
[{sequence_id, start, end, participants}]}]}``, earliest first, each sequence starting at a
different time; Calgate adds ``calgate_unavailable_members`` as for availability.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..domain.availability.intervals import moment
from ..services.availability import UnknownMember, UnknownMemberCalendar
from ..services.reads import utc_time
from ..services.sequenced import PlacedItem, SequencedAnswer, SequencedService
from .app_auth import AppAuthenticator
from .auth import Authenticator
from .availability import identify
from .params import InvalidParam, read_params
from .sequenced_body import parse_sequence


def routes_for(authenticate: Authenticator, authenticate_app: AppAuthenticator,
               service: SequencedService) -> list[Route]:
    """The route over ``service``; both kinds of bearer are tried, the access token first."""

    async def sequenced(request: Request) -> Response:
        caller = await identify(request, authenticate, authenticate_app)
        parsed = parse_sequence(await read_params(request))
        try:
            answer = await service.answer(parsed.items, caller, parsed.tentative_busy,
                                          parsed.limit)
        except UnknownMember as exc:
            raise InvalidParam("sequence.participants.members.sub", "unknown_sub",
                               f"{exc.sub} is not an account this caller may ask about"
                               ) from None
        except UnknownMemberCalendar as exc:
            raise InvalidParam("sequence.participants.members.calendar_ids",
                               "unknown_calendar",
                               f"{exc.calendar_id} is not a calendar of {exc.sub}") from None
        return JSONResponse(render(answer))

    return [Route("/v1/sequenced_availability", sequenced, methods=["POST"])]


def render(answer: SequencedAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {"sequences": [{"sequence": [_placed(p) for p in placed]}
                                          for placed in answer.sequences]}
    if answer.unavailable:
        body["calgate_unavailable_members"] = [
            {"sub": u.sub, "reason": u.reason}
            | ({"profile_id": u.profile_id} if u.profile_id else {})
            for u in answer.unavailable]
    return body


def _placed(placed: PlacedItem) -> dict[str, Any]:
    slot = placed.slot
    return {"sequence_id": placed.label, "start": utc_time(moment(slot.start)),
            "end": utc_time(moment(slot.end)),
            "participants": [{"sub": s} for s in slot.participants]}
