"""Notification channels (API.md s9.1) and Calgate's delivery log and replay.

``POST /v1/channels`` needs ``read_events``, or nothing more than a token of the account
when ``filters.only_managed`` is true (the app hears only about its own events).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.channels import ChannelError, ChannelNotFound, ChannelService
from .auth import Authenticator, Wake
from .errors import ApiError, forbidden, not_found
from .params import InvalidParam, Params, parse_bool, parse_time, read_params


def _filters(params: Params) -> tuple[list[str] | None, bool]:
    raw = params.raw("filters")
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise InvalidParam("filters", "invalid", "filters must be an object")
    ids: Any = raw.get("calendar_ids")
    if ids is not None and (not isinstance(ids, list)
                            or not all(isinstance(i, str) for i in ids)):
        raise InvalidParam("filters.calendar_ids", "invalid",
                           "filters.calendar_ids must be a list of calendar ids")
    only = raw.get("only_managed")
    managed = parse_bool(only) if only is not None else False
    if managed is None:
        raise InvalidParam("filters.only_managed", "invalid",
                           "filters.only_managed must be true or false")
    # Unknown filter keys are ignored (API.md s9.1: SDKs pass arbitrary ones).
    return ids, managed


@dataclass(frozen=True, slots=True)
class _Handlers:
    """The channel endpoints over their service, bound when the routes are built."""

    authenticate: Authenticator
    channels: ChannelService
    wake: Wake

    async def create_channel(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        params = await read_params(request)
        callback_url = params.text("callback_url", required=True)
        assert callback_url is not None
        calendar_ids, only_managed = _filters(params)
        if not only_managed and "read_events" not in caller.grants:
            raise forbidden("read_events", 'Bearer error="insufficient_scope", '
                            'scope="read_events"')
        try:
            channel = await to_thread.run_sync(partial(
                self.channels.create, caller.subject, caller.client_id, callback_url,
                calendar_ids, only_managed))
        except ChannelError as exc:
            raise InvalidParam(exc.field, exc.code, exc.description) from None
        await self.wake()
        return JSONResponse({"channel": channel})

    async def list_channels(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        listed = await to_thread.run_sync(self.channels.list, caller.subject)
        return JSONResponse({"channels": listed})

    async def close_channel(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        try:
            await to_thread.run_sync(self.channels.close, caller.subject,
                                     request.path_params["channel_id"])
        except ChannelNotFound:
            raise not_found() from None
        return Response(status_code=202)

    async def channel_deliveries(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        raw_limit = request.query_params.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
            raise InvalidParam("limit", "invalid", "limit must be a whole number from 1 to 500")
        try:
            found = await to_thread.run_sync(self.channels.deliveries, caller.subject,
                                             request.path_params["channel_id"], int(raw_limit))
        except ChannelNotFound:
            raise not_found() from None
        return JSONResponse(found)

    async def replay_channel(self, request: Request) -> Response:
        caller = await self.authenticate(request, None)
        params = await read_params(request)
        raw = params.text("since", required=True)
        assert raw is not None
        try:
            since = parse_time(raw)
        except ValueError:
            raise InvalidParam("since", "invalid",
                               "since must be a time such as 2026-11-22T09:00:00Z") from None
        try:
            queued = await to_thread.run_sync(self.channels.replay, caller.subject,
                                              request.path_params["channel_id"], since)
        except ChannelNotFound:
            raise not_found() from None
        await self.wake()
        return JSONResponse({"replay": {"queued": queued}}, status_code=202)


def routes_for(authenticate: Authenticator, channels: ChannelService, wake: Wake
               ) -> list[Route]:
    """The channel routes over their service, built once (create_app)."""
    handlers = _Handlers(authenticate, channels, wake)
    return [
        Route("/v1/channels", handlers.create_channel, methods=["POST"]),
        Route("/v1/channels", handlers.list_channels, methods=["GET"]),
        Route("/v1/channels/{channel_id}", handlers.close_channel, methods=["DELETE"]),
        Route("/v1/channels/{channel_id}/deliveries", handlers.channel_deliveries,
              methods=["GET"]),
        Route("/v1/channels/{channel_id}/replay", handlers.replay_channel, methods=["POST"]),
    ]


__all__ = ["ApiError", "routes_for"]
