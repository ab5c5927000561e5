"""Provider push endpoints: ``POST /webhooks/{provider}``.

The request (headers and body) goes to the provider's own push parser (its registry entry),
which says which channel it is for and with which token; channels registered before this
route existed point at ``/webhooks/<name>``, which it is. A push that is not ours gets 404
and changes nothing; a right one makes the profile due for sync and wakes the worker. The
answer is quick either way: the sync itself runs in the worker. A parser may ask for a
handshake reply (a subscription's validation token), which is echoed as text.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from providers.plugin import PushReceipt, PushRequest
from providers.registry import find_entry

from ..services.push import PushService
from .auth import Wake

NOT_FOUND = {"error": "not_found"}


def routes_for(service: PushService, wake: Wake) -> list[Route]:
    """The push route over the push service, built once (create_app)."""

    async def push(request: Request) -> Response:
        name = request.path_params["provider"]
        entry = find_entry(name)
        parse = None if entry is None or not entry.implemented else entry.parse_push()
        if parse is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        receipt = parse(PushRequest(dict(request.headers), await request.body(),
                                    dict(request.query_params)))
        if receipt.reply is not None:
            return PlainTextResponse(receipt.reply)
        if not await to_thread.run_sync(_notify, service, name, receipt):
            return JSONResponse(NOT_FOUND, status_code=404)
        await wake()
        return Response(status_code=200)

    return [Route("/webhooks/{provider}", push, methods=["POST"])]


def _notify(service: PushService, name: str, receipt: PushReceipt) -> bool:
    """Whether any notice was for one of our channels (each is checked on its own)."""
    ours = [service.notify(name, n.channel_id, n.token, n.resource_id, n.state)
            for n in receipt.notices]
    return any(ours)
