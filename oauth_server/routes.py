"""Assemble the authorization server: storage, Authlib core and its Starlette routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .bearer import BearerAuth
from .consent import ConsentScreen
from .crypto import ServerKeys
from .endpoints import (
    application_calendar_endpoint,
    introspection_endpoint,
    metadata,
    revocation_endpoint,
    token_endpoint,
)
from .flows import FlowStore
from .grants_store import GrantStore, Lifetimes
from .ports import AccountHost
from .registry import ClientRegistry
from .server import CalgateServer
from .throttle import FailureThrottle

log = logging.getLogger("calgate.oauth")


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    issuer: str
    lifetimes: Lifetimes
    consent_ttl: int = 1800
    failures_per_minute: int = 20


class AuthorizationService:
    """Everything the host needs: routes to mount, bearer validation, the client registry."""

    def __init__(self, engine: Engine, keys: ServerKeys, host: AccountHost,
                 config: OAuthConfig) -> None:
        self.registry = ClientRegistry(engine, keys, config.lifetimes.cache)
        self.store = GrantStore(engine, keys, config.lifetimes)
        self.flows = FlowStore(engine, config.consent_ttl)
        self.server = CalgateServer(registry=self.registry, store=self.store, keys=keys,
                                    host=host, issuer=config.issuer,
                                    throttle=FailureThrottle(engine, config.failures_per_minute,
                                                             quiet_seconds=config.lifetimes.cache))
        self.bearer = BearerAuth(self.store)
        self.consent = ConsentScreen(self.server, self.flows,
                                     secure_cookies=config.issuer.startswith("https://"))
        self.issuer = config.issuer

    def delete_client(self, client_id: str) -> bool:
        """Erase a client app: its users' data (through the host), parked credentials, tokens."""
        for flow in self.flows.for_client(client_id):
            if flow.pending is not None:
                self.server.host.discard(flow.pending)
        self.server.host.revoke_client(client_id)
        return self.registry.delete(client_id)

    def sweep_expired_flows(self) -> int:
        """Forget consent flows nobody finished, erasing the credentials they parked."""
        expired = self.flows.expired()
        for flow in expired:
            if flow.pending is not None:
                self.server.host.discard(flow.pending)
            self.flows.delete(flow.id)
        return len(expired)

    def sweep_stolen(self) -> int:
        """End the authorizations whose stolen grant was detected but whose erasure failed
        (``CalgateServer.end_stolen``); how many were ended now."""
        ended = 0
        for subject, reason in self.store.stolen_subjects():
            try:
                self.server.end_authorization(subject, reason)
            except Exception:  # e.g. the secret store is sealed: the next sweep tries again
                log.exception("ending stolen authorization %s failed again", subject)
                continue
            ended += 1
        return ended

    def routes(self) -> list[BaseRoute]:
        consent = self.consent
        return [
            Route("/.well-known/oauth-authorization-server", self._metadata, methods=["GET"]),
            Route("/oauth/authorize", consent.authorize, methods=["GET"]),
            Route("/oauth/flow/{flow_id}", consent.show, methods=["GET"]),
            Route("/oauth/flow/{flow_id}/provider", consent.choose, methods=["POST"]),
            Route("/oauth/flow/{flow_id}/connect", consent.connect, methods=["POST"]),
            Route("/oauth/flow/{flow_id}/upstream", consent.upstream, methods=["GET"]),
            Route("/oauth/callback/{provider}", consent.callback, methods=["GET"]),
            Route("/oauth/flow/{flow_id}/decision", consent.decide, methods=["POST"]),
            Route("/oauth/relink/{token}", consent.relink, methods=["GET"]),
            Route("/oauth/token", token_endpoint(self.server), methods=["POST"]),
            Route("/oauth/token/revoke", revocation_endpoint(self.server), methods=["POST"]),
            Route("/oauth/introspect", introspection_endpoint(self.server), methods=["POST"]),
            Route("/v1/application_calendars", application_calendar_endpoint(self.server),
                  methods=["POST"]),
            *(Route(path, post_only, methods=["GET", "PUT", "PATCH", "DELETE"])
              for path in ("/oauth/token", "/oauth/token/revoke", "/oauth/introspect")),
            Route("/oauth/branding/{client_id}.css", self._branding_css, methods=["GET"]),
            Mount("/oauth/static", StaticFiles(directory=Path(__file__).parent / "static"),
                  name="oauth-static"),
        ]

    async def _metadata(self, request: HttpRequest) -> Response:
        return JSONResponse(metadata(self.issuer))

    async def _branding_css(self, request: HttpRequest) -> Response:
        """The client's accent colour as CSS, so pages need no inline style (strict CSP)."""
        from anyio import to_thread

        client = await to_thread.run_sync(self.registry.find, request.path_params["client_id"])
        color = client.branding.accent_color if client else None
        body = f":root {{ --accent: {color}; --on-accent: {on_accent(color)}; }}\n" if color else ""
        return Response(body, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=300"})


async def post_only(request: HttpRequest) -> Response:
    """Other methods on the POST endpoints: a JSON error, never cached (OAUTH.md 64-65)."""
    return JSONResponse({"error": "invalid_request", "error_description": "Use POST."},
                        status_code=405, headers={"Allow": "POST", "Cache-Control": "no-store",
                                                  "Pragma": "no-cache"})


def on_accent(color: str) -> str:
    """Black or white, whichever contrasts more with ``color`` (WCAG relative luminance)."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i:i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"
