"""Graph's places of type room (``GET /v1.0/places/microsoft.graph.room``): a tenant's rooms,
100 a page unless ``$top`` says otherwise, linked by ``@odata.nextLink``; delegated
``Place.Read.All`` (or ``Place.ReadWrite.All``), work or school accounts only. Consent to
Place.Read.All needs an administrator: a tenant grants it once (``admin_consented``), and
until then signing in with it answers AADSTS90094.
https://learn.microsoft.com/graph/api/place-list
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError, access_denied, invalid

READ = frozenset({"Place.Read.All", "Place.ReadWrite.All"})
ADMIN_ONLY = frozenset({"Place.Read.All", "Place.ReadWrite.All"})  # no user consent
DEFAULT_PAGE = 100
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#places/microsoft.graph.room"


@dataclass
class Places:
    rooms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant -> rooms
    admin_consented: dict[str, set[str]] = field(default_factory=dict)  # tenant -> perms

    def add_room(self, tenant: str, email: str, name: str, capacity: int | None) -> None:
        self.rooms.setdefault(tenant, []).append({
            "id": str(uuid.uuid4()), "emailAddress": email, "displayName": name,
            "capacity": capacity, "bookingType": "standard", "isWheelChairAccessible": False})

    def needs_admin(self, tenant: str, asked: set[str]) -> bool:
        """Does signing in for ``asked`` need an administrator this tenant has not had?"""
        return bool(asked & ADMIN_ONLY - self.admin_consented.get(tenant, set()))


def rooms_page(places: Places, tenant: str, personal: bool, scopes: frozenset[str],
               query: dict[str, str], link: str) -> dict[str, Any]:
    if not scopes & READ:
        raise access_denied()
    if personal:
        raise GraphError(400, "BadRequest", "This API is not supported for MSA accounts.")
    top = _number(query.get("$top", str(DEFAULT_PAGE)), "$top")
    skip = _number(query.get("$skip", "0"), "$skip")
    if top < 1:
        raise invalid("Invalid $top value.")
    rooms = places.rooms.get(tenant, [])
    page: dict[str, Any] = {"@odata.context": CONTEXT, "value": rooms[skip:skip + top]}
    if skip + top < len(rooms):
        page["@odata.nextLink"] = f"{link}?$top={top}&$skip={skip + top}"
    return page


def _number(raw: str, name: str) -> int:
    if not re.fullmatch(r"\d{1,6}", raw):
        raise invalid(f"Invalid {name} value.")
    return int(raw)
