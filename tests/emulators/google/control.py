"""``/_emulator/...``: the control API as JSON, for tests driving the emulator from another
process (a browser journey, a gateway in a subprocess). Each route calls the Python method of
the same name on :class:`GoogleEmulator`."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .routes import json_response
from .server import Request, Response

if TYPE_CHECKING:
    from .emulator import GoogleEmulator

EVENTS = re.compile(r"/_emulator/users/(?P<email>[^/]+)/calendars/(?P<cal>[^/]+)/events"
                    r"(?:/(?P<event>[^/]+))?")
REVOKE = re.compile(r"/_emulator/users/(?P<email>[^/]+)/revoke")


def route(emu: GoogleEmulator, request: Request) -> Response:
    from .emulator import load_json

    body = load_json(request.body) if request.method in ("POST", "PATCH") else {}
    path, method = request.path, request.method
    if (method, path) == ("POST", "/_emulator/apps"):
        emu.register_app(body["client_id"], body["client_secret"], body["name"],
                         body.get("redirect_uris", []))
        return json_response(200, {})
    if (method, path) == ("POST", "/_emulator/users"):
        return json_response(200, {"email": emu.add_user(body["email"], body.get("name"),
                                                         body.get("tz", "UTC"))})
    if (method, path) == ("POST", "/_emulator/tokens"):
        token = emu.issue_refresh_token(body["email"], body["client_id"], body["scopes"])
        return json_response(200, {"refresh_token": token})
    if (method, path) == ("POST", "/_emulator/sync-tokens/expire"):
        emu.expire_sync_tokens()
        return json_response(200, {})
    if (method, path) == ("POST", "/_emulator/faults"):
        if body.pop("drop_answer", False):
            emu.drop_answers(body.get("path", ".*"), method=body.get("method"),
                             times=body.get("times", 1))
        else:
            emu.inject_fault(**body)
        return json_response(200, {})
    if (method, path) == ("DELETE", "/_emulator/faults"):
        emu.clear_faults()
        return json_response(200, {})
    if (method, path) == ("GET", "/_emulator/requests"):
        return json_response(200, [dataclasses.asdict(r) for r in emu.requests])
    if (method, path) == ("GET", "/_emulator/push"):
        return json_response(200, [dataclasses.asdict(d) for d in emu.deliveries()])
    if (method, path) == ("GET", "/_emulator/mail"):
        return json_response(200, list(emu.mail))
    if (found := REVOKE.fullmatch(path)) and method == "POST":
        emu.revoke_user_tokens(unquote(found["email"]))
        return json_response(200, {})
    if found := EVENTS.fullmatch(path):
        return _events(emu, method, unquote(found["email"]), unquote(found["cal"]),
                       unquote(found["event"]) if found["event"] else None, body)
    return json_response(404, {"error": f"no control route {method} {path}"})


def _events(emu: GoogleEmulator, method: str, email: str, calendar_id: str,
            event_id: str | None, body: Any) -> Response:
    if method == "GET" and event_id is None:
        return json_response(200, emu.events(email, calendar_id, include_cancelled=True))
    if method == "GET" and event_id:
        return json_response(200, emu.event(email, calendar_id, event_id))
    if method == "POST" and event_id is None:
        return json_response(200, emu.add_event(email, calendar_id, body))
    if method == "PATCH" and event_id:
        return json_response(200, emu.update_event(email, calendar_id, event_id, body))
    if method == "DELETE" and event_id:
        emu.cancel_event(email, calendar_id, event_id)
        return json_response(200, {})
    return json_response(405, {"error": "method not allowed"})
