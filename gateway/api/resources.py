"""Rooms: ``GET /v1/resources`` (Cronofy's List Resources; pycronofy ``resources()``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services import resources as service
from .auth import Authenticator
from .errors import ApiError

SCOPE = "read_resources"  # Calgate's extension scope (docs/api.md, "Scopes")


def routes_for(authenticate: Authenticator,
               resources: service.ResourceService) -> list[Route]:
    """The route over ``resources``, built once with the provider settings (Gateway.build)."""

    async def list_resources(request: Request) -> Response:
        caller = await authenticate(request, SCOPE)
        try:
            listed = await resources.list_resources(caller.subject)
        except service.ResourceError as exc:
            raise _refusal(exc) from None
        return JSONResponse({"resources": listed})

    return [Route("/v1/resources", list_resources, methods=["GET"])]


def _refusal(exc: service.ResourceError) -> ApiError:
    """Which profile failed and why, as JSON (pycronofy raises on any of them)."""
    if isinstance(exc, service.ProfileNeedsRelink):
        return ApiError(423, {"error": "relink_required", "profile_id": exc.profile_id})
    if isinstance(exc, service.DirectoryRefused):
        return ApiError(403, {"error": "resources_forbidden", "profile_id": exc.profile_id})
    retry = exc.retry_after if isinstance(exc, service.UpstreamUnavailable) else None
    return ApiError(503, {"error": "provider_unavailable", "profile_id": exc.profile_id},
                    {"Retry-After": str(int(retry or 30))})
