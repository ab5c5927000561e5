"""The Admin SDK Directory API's calendar resources (rooms): ``GET
admin/directory/v1/customer/{customer}/resources/calendars``, checked against the
discovery document googleapiclient ships (``admin.directory_v1.json``: path, query
parameters, scopes), paged with ``nextPageToken``. Only a Workspace administrator may list
them: anyone else gets Google's 403 "Not Authorized to access this resource/api".
https://developers.google.com/admin-sdk/directory/reference/rest/v1/resources.calendars/list
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .errors import ApiError, insufficient_scopes, invalid, unauthenticated

if TYPE_CHECKING:
    from .oauth import OAuthState

PREFIX = "/admin/directory/v1/"
LIST_PATH = re.compile(r"customer/(?P<customer>[^/]+)/resources/calendars")
DEFAULT_PAGE = 100


@cache
def _list_method() -> dict[str, Any]:
    path = resources.files("googleapiclient").joinpath(
        "discovery_cache", "documents", "admin.directory_v1.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    method: dict[str, Any] = document["resources"]["resources"]["resources"]["calendars"][
        "methods"]["list"]
    return method


def scopes() -> dict[str, str]:
    """The Directory scopes the list method accepts, with Google's consent-screen words."""
    return {"https://www.googleapis.com/auth/admin.directory.resource.calendar":
            "See, add, edit, and permanently delete calendar resources on your domain",
            "https://www.googleapis.com/auth/admin.directory.resource.calendar.readonly":
            "View calendar resources on your domain"}


@dataclass
class Directory:
    """Each Workspace domain's rooms, and who administers it."""

    rooms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # domain -> items
    admins: set[str] = field(default_factory=set)

    def add_room(self, domain: str, email: str, name: str, capacity: int | None) -> None:
        room: dict[str, Any] = {
            "kind": "admin#directory#resources#calendars#CalendarResource",
            "resourceId": str(len(self.rooms.get(domain, [])) + 1000),
            "resourceName": name, "generatedResourceName": name, "resourceEmail": email,
            "resourceType": "Conference room", "resourceCategory": "CONFERENCE_ROOM"}
        if capacity is not None:
            room["capacity"] = capacity
        self.rooms.setdefault(domain, []).append(room)


def handle(directory: Directory, oauth: OAuthState, method: str, rest: str,
           query: dict[str, list[str]], authorization: str) -> dict[str, Any]:
    """The list call's JSON answer, or ApiError as Google answers it."""
    match = LIST_PATH.fullmatch(rest)
    if method != "GET" or match is None:
        raise ApiError(404, "notFound", f"Not Found: {method} {PREFIX}{rest}")
    if not authorization.startswith("Bearer "):
        raise unauthenticated()
    token = oauth.bearer(authorization[7:])
    if token is None:
        raise unauthenticated()
    spec = _list_method()
    if not token.scopes & frozenset(spec["scopes"]):
        raise insufficient_scopes("resources.calendars.list")
    size, offset = _paging(spec["parameters"], query)
    domain = token.user.rpartition("@")[2]
    if token.user not in directory.admins:
        raise ApiError(403, "forbidden", "Not Authorized to access this resource/api")
    if match["customer"] != "my_customer":
        raise ApiError(400, "badRequest", "Bad Request")
    items = directory.rooms.get(domain, [])
    page: dict[str, Any] = {"kind": "admin#directory#resources#calendars#calendarResourcesList",
                            "etag": f'"{len(items)}"', "items": items[offset:offset + size]}
    if offset + size < len(items):
        page["nextPageToken"] = f"p{offset + size}"
    return page


def _paging(parameters: dict[str, Any], query: dict[str, list[str]]) -> tuple[int, int]:
    for name, values in query.items():
        if name not in parameters and name not in ("alt", "prettyPrint", "fields"):
            raise invalid(f"Unknown name \"{name}\": Cannot bind query parameter.",
                          location=name)
        if len(values) > 1:
            raise invalid(f"Parameter {name} may be given only once.", location=name)
    size = int(query.get("maxResults", [str(DEFAULT_PAGE)])[0])
    if not 1 <= size <= int(parameters["maxResults"]["maximum"]):
        raise invalid(f"Invalid value '{size}'. Values must be within the range: [1, 500]",
                      location="maxResults")
    token = query.get("pageToken", ["p0"])[0]
    if not re.fullmatch(r"p\d+", token):
        raise invalid("Invalid page token", location="pageToken")
    return size, int(token[1:])
