"""The Google emulator: OAuth consent and tokens, Calendar v3 and push channels on one
loopback HTTP server, plus a control API (Python methods here, the same as JSON under
``/_emulator/``) to act as the calendar's owner, inject faults and inspect what happened.

    with GoogleEmulator.running() as emu:
        emu.register_app("cid", "secret", "My Portal App", ["http://127.0.0.1:9/cb"])
        emu.add_user("ada@example.com")
        refresh = emu.issue_refresh_token("ada@example.com", "cid", scopes)
        ... open the provider with ProviderOptions(settings=emu.provider_settings) ...
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .directory import Directory
from .events import Events
from .faults import Fault, Faults, LoggedRequest
from .oauth import App, OAuthState
from .push import Delivery, Push
from .routes import handle, json_response
from .server import Request, Response, Server
from .state import Group, World
from .timeutil import write_when


class GoogleEmulator:
    """A stateful Google (accounts + Calendar v3) on 127.0.0.1."""

    def __init__(self, *, access_token_ttl: float = 3599.0,
                 refresh_token_ttl: float | None = None, auto_create_users: bool = False,
                 port: int = 0) -> None:
        self.world = World()
        self.directory = Directory()  # Workspace rooms (Admin SDK), guarded by world.lock
        self.oauth = OAuthState(access_ttl=access_token_ttl, refresh_ttl=refresh_token_ttl)
        self.push = Push()
        self.world.on_change = self.push.changed
        self.faults = Faults()
        self.log: list[LoggedRequest] = []
        self.mail: list[dict[str, Any]] = []  # what sendUpdates would have emailed
        self.auto_create_users = auto_create_users
        self._server = Server(lambda request: handle(self, request), port)
        self.base_url = self._server.url

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> GoogleEmulator:
        self.push.start()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self.push.stop()

    @classmethod
    @contextmanager
    def running(cls, **options: Any) -> Iterator[GoogleEmulator]:
        emulator = cls(**options).start()
        try:
            yield emulator
        finally:
            emulator.stop()

    @property
    def endpoints(self) -> dict[str, str]:
        """Google's five endpoints on this emulator."""
        return {"api_endpoint": f"{self.base_url}/calendar/v3/",
                "directory_endpoint": f"{self.base_url}/",
                "token_uri": f"{self.base_url}/token",
                "revoke_uri": f"{self.base_url}/revoke",
                "auth_uri": f"{self.base_url}/o/oauth2/v2/auth"}

    @property
    def provider_settings(self) -> dict[str, object]:
        """``ProviderOptions.settings`` pointing the Google provider here."""
        from providers.google.config import GoogleSettings

        return {"google": GoogleSettings.from_values(self.endpoints)}

    # -- accounts and apps ----------------------------------------------------------------

    def register_app(self, client_id: str, client_secret: str, name: str,
                     redirect_uris: Iterable[str] = ()) -> None:
        with self.world.lock:
            self.oauth.apps[client_id] = App(client_id, client_secret, name,
                                             tuple(redirect_uris))

    def add_user(self, email: str, name: str | None = None, tz: str = "UTC") -> str:
        with self.world.lock:
            return self.world.add_user(email, name, tz).email

    def add_calendar(self, email: str, summary: str, tz: str | None = None,
                     calendar_id: str | None = None) -> str:
        with self.world.lock:
            user = self.world.users[email.lower()]
            return self.world.add_calendar(user.email, summary, tz or user.tz,
                                           calendar_id=calendar_id).id

    def share_calendar(self, calendar_id: str, email: str, role: str) -> None:
        """Give ``email`` a role (reader, writer, freeBusyReader, owner) on a calendar."""
        with self.world.lock:
            self.world.share(calendar_id, email, role)

    def add_group(self, email: str, members: Iterable[str]) -> None:
        with self.world.lock:
            self.world.groups[email.lower()] = Group(email.lower(), list(members))

    def add_room(self, domain: str, email: str, name: str,
                 capacity: int | None = None) -> None:
        """A calendar resource (a room) of the Workspace ``domain``."""
        with self.world.lock:
            self.directory.add_room(domain.lower(), email, name, capacity)

    def make_admin(self, email: str) -> None:
        """``email`` administers its domain: it may list the domain's calendar resources."""
        with self.world.lock:
            self.directory.admins.add(email.lower())

    def issue_refresh_token(self, email: str, client_id: str, scopes: Iterable[str]) -> str:
        """A refresh token as if ``email`` had consented to ``scopes`` for the app."""
        with self.world.lock:
            return self.oauth.issue_refresh(email.lower(), client_id, frozenset(scopes))

    def expire_access_tokens(self, email: str | None = None) -> None:
        with self.world.lock:
            self.oauth.expire_access(email.lower() if email else None)

    def revoke_user_tokens(self, email: str) -> None:
        """The user removes every app's access in their Google Account settings."""
        with self.world.lock:
            self.oauth.revoke_user(email.lower())

    def expire_sync_tokens(self) -> None:
        with self.world.lock:
            self.world.expire_sync_tokens()

    # -- the owner's changes ("in Google") ------------------------------------------------

    def _events(self, email: str, calendar_id: str) -> Events:
        calendar = self.world.calendar(email.lower(), calendar_id)
        if calendar is None:
            raise KeyError(f"{email} has no calendar {calendar_id}")
        return Events(calendar, self.world.on_change)

    def add_event(self, email: str, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Create an event as its owner would in Google Calendar (any ``id`` is accepted,
        so a test can name it; the API insists on base32hex)."""
        with self.world.lock:
            events = self._events(email, calendar_id)
            return copy.deepcopy(events.insert(event, email.lower(), any_id=True,
                                               conference_version=1))

    def update_event(self, email: str, calendar_id: str, event_id: str,
                     changes: dict[str, Any]) -> dict[str, Any]:
        """Patch an event (an instance id makes an exception of that instance)."""
        with self.world.lock:
            events = self._events(email, calendar_id)
            return copy.deepcopy(events.update(event_id, copy.deepcopy(changes),
                                               conference_version=1))

    def move_event(self, email: str, calendar_id: str, event_id: str, start: datetime,
                   end: datetime, tz: str | None = None) -> dict[str, Any]:
        return self.update_event(email, calendar_id, event_id,
                                 {"start": write_when(start, tz), "end": write_when(end, tz)})

    def cancel_event(self, email: str, calendar_id: str, event_id: str) -> None:
        with self.world.lock:
            self._events(email, calendar_id).delete(event_id)

    # -- inspection -----------------------------------------------------------------------

    def events(self, email: str, calendar_id: str = "primary",
               include_cancelled: bool = False) -> list[dict[str, Any]]:
        """The stored event objects (singles, masters, exceptions) with every field."""
        with self.world.lock:
            events = self._events(email, calendar_id)
            return [copy.deepcopy(s.resource) for s in events.cal.events.values()
                    if include_cancelled or s.resource.get("status") != "cancelled"]

    def event(self, email: str, calendar_id: str, event_id: str) -> dict[str, Any]:
        with self.world.lock:
            return copy.deepcopy(self._events(email, calendar_id).get(event_id))

    @property
    def requests(self) -> list[LoggedRequest]:
        with self.world.lock:
            return list(self.log)

    def clear_requests(self) -> None:
        with self.world.lock:
            self.log.clear()

    def count(self, api_method: str | None = None, *, method: str | None = None,
              path: str | None = None, status: int | None = None) -> int:
        """Requests matching every filter given (``path``: a substring)."""
        return sum(1 for r in self.requests
                   if (api_method is None or r.api_method == api_method)
                   and (method is None or r.method == method)
                   and (path is None or path in r.path)
                   and (status is None or r.status == status))

    @property
    def channels(self) -> dict[str, Any]:
        with self.world.lock:
            return dict(self.push.channels)

    def deliveries(self) -> list[Delivery]:
        return list(self.push.deliveries)

    def wait_for_push(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait until ``count`` notifications have been delivered (answered or failed)."""
        return self.push.wait(lambda done: len(done) >= count, timeout)

    # -- faults ---------------------------------------------------------------------------

    def inject_fault(self, path: str = ".*", *, method: str | None = None,
                     status: int = 503, reason: str | None = None,
                     retry_after: float | None = None, times: int = 1) -> None:
        """The next ``times`` requests whose path matches the regex ``path`` (and method)
        fail with ``status`` in Google's shape, without being applied: 403 with reason
        rateLimitExceeded (default) or userRateLimitExceeded, 429, 500 or 503; with
        ``retry_after`` a Retry-After header."""
        with self.world.lock:
            self.faults.add(Fault(re.compile(path), method, status, reason, retry_after,
                                  times))

    def drop_answers(self, path: str = ".*", *, method: str | None = None,
                     times: int = 1) -> None:
        """The next ``times`` matching requests are applied, then their connection is closed
        without an answer (the client sees the connection drop)."""
        with self.world.lock:
            self.faults.add(Fault(re.compile(path), method, 0, None, None, times,
                                  drop_answer=True))

    def clear_faults(self) -> None:
        with self.world.lock:
            self.faults.clear()

    # -- the same as JSON, for tests that drive the emulator from another process ---------

    def control_route(self, request: Request) -> Response:
        from .control import route  # the JSON control endpoints

        try:
            return route(self, request)
        except (KeyError, ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})


def load_json(body: bytes) -> Any:
    return json.loads(body or b"{}")
