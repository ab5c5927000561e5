"""Provider push endpoints: ``POST /webhooks/google`` (events.watch notifications).

Google sends only headers (no body worth reading): the channel id, our verification
token, the watched resource's id and the state (``sync`` when the channel opens, then
``exists``/``not_exists``). A push that is not ours gets 404 and changes nothing; a right
one makes the profile due for sync and wakes the worker. The answer is quick either way:
the sync itself runs in the worker.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def google(request: Request) -> Response:
    gateway = request.app.state.gateway
    headers = request.headers
    channel_id = headers.get("x-goog-channel-id", "")
    token = headers.get("x-goog-channel-token", "")
    if not channel_id or not token:
        return JSONResponse({"error": "not_found"}, status_code=404)
    ours = await to_thread.run_sync(
        gateway.push.notify, "google", channel_id, token,
        headers.get("x-goog-resource-id"), headers.get("x-goog-resource-state", "exists"))
    if not ours:
        return JSONResponse({"error": "not_found"}, status_code=404)
    await gateway.wake_workers()
    return Response(status_code=200)


routes = [Route("/webhooks/google", google, methods=["POST"])]
