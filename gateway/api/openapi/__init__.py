"""The OpenAPI 3.1 document of every route the app serves, served at ``GET /openapi.json``.

One module per area holds its paths and schemas as data; :func:`document` assembles them
once, when the app is built. ``python -m gateway.api.openapi.render`` turns the document
into docs/api.md.
"""

from __future__ import annotations

import copy
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import (
    account,
    availability,
    events,
    invites,
    notify,
    oauth,
    permissions,
    resources,
    rules,
)
from .schema import RESPONSES, SCHEMAS, SECURITY_SCHEMES, Json

VERSION = "1"
AREAS = (oauth, account, events, notify, permissions, invites, resources, availability, rules)
TAGS = [
    {"name": "OAuth", "description": "Tokens for client apps (RFC 6749), Cronofy-shaped."},
    {"name": "Consent pages", "description": "HTML pages the user's browser goes through."},
    {"name": "Account", "description": "The account, its profiles and calendars."},
    {"name": "Events", "description": "Reads from the mirror; writes applied upstream."},
    {"name": "Channels", "description": "Change notifications to the app's callback URL."},
    {"name": "Smart Invites", "description": "Invitations by email, answers by inbound mail."},
    {"name": "Availability", "description": "When people can meet, from the mirror; "
                                             "availability rules and available periods."},
    {"name": "Operations", "description": "Health, readiness, metrics, provider push."},
]
DESCRIPTION = (
    "Calgate's REST API is wire-compatible with Cronofy's: the same paths, parameters and "
    "bodies, so Cronofy's SDKs work against it (point their API and app base URLs at "
    "Calgate). Parameters may come in the query string or in a JSON or form body (the body "
    "wins); booleans accept true/false/1/0; arrays are name[]=a&name[]=b or JSON arrays; "
    "unknown parameters are ignored. Errors are JSON: 422 {\"errors\": {field: [{key, "
    "description}]}} for refused input, {\"error\": code} otherwise, and RFC 6749 bodies on "
    "/oauth/token. Operations marked Calgate are not in Cronofy's API.")


def document(server_url: str) -> Json:
    """The whole document for a gateway reachable at ``server_url``."""
    paths: Json = {}
    schemas: Json = dict(SCHEMAS)
    for area in AREAS:
        paths |= area.PATHS
        schemas |= area.SCHEMAS
    paths["/openapi.json"] = {"get": {
        "operationId": "openapi", "tags": ["Operations"], "security": [],
        "summary": "This document.",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {"application/json": {"schema": {
                                  "type": "object"}}}}}}}
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "Calgate API", "version": VERSION, "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": server_url}],
        "tags": TAGS,
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "responses": RESPONSES,
                       "securitySchemes": SECURITY_SCHEMES | invites.SECURITY_SCHEMES},
    })


def routes(doc: Json) -> list[Route]:
    """``GET /openapi.json``, serialised once; no authentication."""
    content = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    async def openapi(request: Request) -> Response:
        return Response(content, media_type="application/json",
                        headers={"Cache-Control": "public, max-age=300"})

    return [Route("/openapi.json", openapi, methods=["GET"])]
