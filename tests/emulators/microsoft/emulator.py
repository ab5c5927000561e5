"""The Microsoft emulator: the identity platform (OpenID configuration, JWKS, a consent
page, tokens) and a Graph v1.0 calendar subset on one loopback HTTPS server with a test CA,
plus a Python API to act as the mailbox's owner "in Outlook", inject faults and inspect.

    with MicrosoftEmulator.running() as emu:
        emu.register_app("cid", "secret", "Portal", ["http://127.0.0.1:9/cb"])
        emu.add_user("ada@contoso.example")            # work or school (Microsoft 365)
        emu.add_user("bob@outlook.example", personal=True)  # Outlook.com
        ... msal authority f"{emu.base_url}/common", verify=emu.ca_path ...
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .delta import Delta
from .events import Events
from .faults import Fault, Faults, Hold, LoggedRequest
from .identity import Identity
from .places import Places
from .push import Delivery, Push
from .render import event_json
from .routes import handle
from .server import Server, TestCA
from .state import DEFAULT_TENANT, App, World

__all__ = ["MicrosoftEmulator"]


class MicrosoftEmulator:
    """A stateful Microsoft identity platform + Graph on https://127.0.0.1:PORT."""

    def __init__(self, *, access_token_ttl: float = 3599.0, port: int = 0,
                 validation_timeout: float = 10.0) -> None:
        self.world = World()
        self.identity = Identity(self.world, access_token_ttl)
        self.delta = Delta()
        self.places = Places()  # tenants' rooms and admin consents, guarded by world.lock
        self.push = Push(validation_timeout=validation_timeout)
        self.world.listeners.append(self.push.changed)
        self.faults = Faults()
        self.log: list[LoggedRequest] = []
        self.ca = TestCA()
        self._server = Server(lambda request: handle(self, request), self.ca, port)
        self.base_url = self._server.url
        self.graph_url = f"{self.base_url}/v1.0"
        self.ca_path = self.ca.pem_path  # trust this (verify=...), never globally

    def start(self) -> MicrosoftEmulator:
        self.push.start()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self.push.stop()
        self.ca.cleanup()

    @classmethod
    @contextmanager
    def running(cls, **options: Any) -> Iterator[MicrosoftEmulator]:
        emulator = cls(**options).start()
        try:
            yield emulator
        finally:
            emulator.stop()

    def authority(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}"

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.base_url}/{tenant}"
        named = tenant in ("common", "organizations", "consumers")
        issuer = f"{self.base_url}/{{tenantid}}/v2.0" if named else f"{base}/v2.0"
        return {"token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt",
                                                          "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token",
                                             "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer, "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.graph_url}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True, "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                                     "preferred_username", "name", "tid", "ver", "email",
                                     "oid"],
                "kerberos_endpoint": f"{base}/kerberos", "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com", "rbac_url": "https://pas.windows.net"}

    def instance_metadata(self, query: dict[str, str]) -> dict[str, Any]:
        host = self.base_url.split("://", 1)[1]
        return {"tenant_discovery_endpoint": f"{self.base_url}/common/v2.0/.well-known/"
                                             "openid-configuration",
                "api-version": "1.1", "metadata": [{"preferred_network": host,
                                                    "preferred_cache": host,
                                                    "aliases": [host]}]}

    # -- apps and accounts --------------------------------------------------------------

    def register_app(self, client_id: str, client_secret: str | None, name: str,
                     redirect_uris: Iterable[str] = (), *,
                     audience: str = "AzureADandPersonalMicrosoftAccount",
                     home_tenant: str | None = None) -> None:
        """An Entra app; ``client_secret=None`` makes a public client (no secret)."""
        with self.world.lock:
            app = App(client_id, client_secret, name, tuple(redirect_uris), audience)
            if home_tenant:
                app.home_tenant = home_tenant
            self.world.apps[client_id] = app

    def add_user(self, email: str, name: str | None = None, *, personal: bool = False,
                 tenant: str | None = None, tz: str = "UTC") -> str:
        """A work or school account (in ``tenant``) or a personal one; returns its
        default calendar's id."""
        with self.world.lock:
            user = self.world.add_user(email, name, personal, tenant, tz)
            return self.world.mailbox(user.email).default().id

    def user(self, email: str) -> dict[str, Any]:
        with self.world.lock:
            user = self.world.users[email.lower()]
            return {"oid": user.oid, "tid": user.tenant, "personal": user.personal,
                    "email": user.email, "name": user.name}

    def add_room(self, email: str, name: str, *, capacity: int | None = None,
                 tenant: str = DEFAULT_TENANT) -> None:
        """A room (a place of type room) of the work or school ``tenant``."""
        with self.world.lock:
            self.places.add_room(tenant, email, name, capacity)

    def grant_admin_consent(self, permission: str, tenant: str = DEFAULT_TENANT) -> None:
        """An administrator of ``tenant`` consents to ``permission`` (Place.Read.All) for
        every user: until then signing in with it answers AADSTS90094."""
        with self.world.lock:
            self.places.admin_consented.setdefault(tenant, set()).add(permission)

    def require_admin_consent(self, email: str, code: int | None = 90094) -> None:
        """Consent for this user needs an administrator (AADSTS90094 or 65001)."""
        with self.world.lock:
            self.world.users[email.lower()].admin_consent_error = code

    def fail_refresh(self, email: str, code: int | None = 700082) -> None:
        """Refresh tokens of this user answer invalid_grant (AADSTS70000 or 700082)."""
        with self.world.lock:
            self.world.users[email.lower()].refresh_error = code

    def issue_refresh_token(self, email: str, client_id: str, scopes: Iterable[str]) -> str:
        with self.world.lock:
            return self.identity.issue_refresh(email.lower(), client_id,
                                               frozenset(scopes) | {"offline_access"})

    def expire_access_tokens(self, email: str | None = None) -> None:
        with self.world.lock:
            self.identity.expire_access(email.lower() if email else None)

    def revoke_user_tokens(self, email: str) -> None:
        with self.world.lock:
            self.identity.revoke_user(email.lower())

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far answers 410 Gone from now on."""
        with self.world.lock:
            self.delta.expire_all()

    def add_calendar(self, email: str, name: str, *, can_edit: bool = True,
                     color: str = "auto", owner: tuple[str, str] | None = None) -> str:
        """A calendar in the mailbox (``owner=(name, address)`` and ``can_edit=False``:
        one shared with the user read-only)."""
        with self.world.lock:
            return self.world.add_calendar(email, name, can_edit=can_edit, color=color,
                                           owner=owner).id

    # -- the owner's changes ("in Outlook") ---------------------------------------------

    def _events(self, email: str) -> Events:
        return Events(self.world, self.world.mailbox(email))

    def add_event(self, email: str, event: dict[str, Any], calendar_id: str | None = None,
                  *, event_id: str | None = None,
                  invited_by: tuple[str, str] | None = None) -> dict[str, Any]:
        """Create an event (Graph's create body) as the owner would in Outlook; with
        ``event_id`` under that id rather than one the emulator picks; with
        ``invited_by=(name, address)`` as an invitation from that organizer, unanswered."""
        with self.world.lock:
            box = self.world.mailbox(email)
            calendar = box.calendars[calendar_id] if calendar_id else box.default()
            events = self._events(email)
            stored, _ = events.create(calendar, copy.deepcopy(event), event_id)
            if invited_by is not None:
                events.invited(stored, invited_by)
            return event_json(stored, "UTC")

    def update_event(self, email: str, event_id: str,
                     changes: dict[str, Any]) -> dict[str, Any]:
        """Patch an event; an occurrence's id makes an exception of it."""
        with self.world.lock:
            return event_json(self._events(email).update(event_id, copy.deepcopy(changes)),
                              "UTC")

    def delete_event(self, email: str, event_id: str) -> None:
        """Delete an event; an occurrence's id cancels that occurrence."""
        with self.world.lock:
            self._events(email).delete(event_id)

    def respond(self, email: str, event_id: str, attendee: str, response: str) -> None:
        """An attendee answers: accepted, tentativelyAccepted or declined."""
        with self.world.lock:
            self._events(email).respond(event_id, attendee, response)

    # -- inspection -----------------------------------------------------------------------

    def events(self, email: str, calendar_id: str | None = None) -> list[dict[str, Any]]:
        """The stored singles and series masters with every field (extended properties
        included)."""
        with self.world.lock:
            box = self.world.mailbox(email)
            calendar = box.calendars[calendar_id] if calendar_id else box.default()
            return [event_json(s, "UTC", expand=set(s.extended))
                    for s in calendar.events.values()]

    def event(self, email: str, event_id: str) -> dict[str, Any]:
        with self.world.lock:
            stored = self._events(email).find(event_id)[1]
            return event_json(stored, "UTC", expand=set(stored.extended))

    @property
    def requests(self) -> list[LoggedRequest]:
        with self.world.lock:
            return list(self.log)

    def clear_requests(self) -> None:
        with self.world.lock:
            self.log.clear()

    def count(self, kind: str | None = None, *, method: str | None = None,
              path: str | None = None, status: int | None = None,
              user: str | None = None) -> int:
        """Requests matching every filter given (``kind``: "delta", "events.create",
        "token", ...; ``path``: a substring)."""
        return sum(1 for r in self.requests
                   if (kind is None or r.kind == kind) and (method is None or r.method == method)
                   and (path is None or path in r.path) and (status is None or r.status == status)
                   and (user is None or r.user == user.lower()))

    # -- subscriptions ----------------------------------------------------------------------

    def subscriptions(self) -> list[dict[str, Any]]:
        with self.world.lock:
            return [s.json() for s in self.push.subs.values()]

    def lifecycle(self, subscription_id: str, event: str) -> None:
        """Send reauthorizationRequired, subscriptionRemoved (which also removes it) or
        missed to the subscription's lifecycle URL."""
        with self.world.lock:
            self.push.lifecycle(subscription_id, event)

    def deliveries(self) -> list[Delivery]:
        return self.push.wait(0, 0)

    def wait_for_push(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait until ``count`` notifications have been delivered (answered or failed)."""
        return self.push.wait(count, timeout)

    # -- faults ---------------------------------------------------------------------------

    def inject_fault(self, email: str | None = None, *, status: int = 429,
                     retry_after: int | None = 1, path: str = ".*",
                     method: str | None = None, times: int = 1) -> None:
        """The next ``times`` Graph requests of this mailbox (path regex, method) answer
        ``status`` (429, 503, 504) with Retry-After, without being applied."""
        with self.world.lock:
            self.faults.add(Fault(email.lower() if email else None, re.compile(path), method,
                                  status, retry_after, times))

    def drop_answers(self, email: str | None = None, *, path: str = r"/events$",
                     method: str | None = "POST", times: int = 1) -> None:
        """Apply the next ``times`` matching requests (by default: creates), then close the
        connection without an answer."""
        with self.world.lock:
            self.faults.add(Fault(email.lower() if email else None, re.compile(path), method,
                                  0, None, times, drop_answer=True))

    def hold_answer(self, email: str, kind: str, *, query: str | None = None) -> Hold:
        """Apply the mailbox's next ``kind`` request (with the ``query`` parameter, if
        given: ``$deltatoken`` for an incremental delta round), then keep its caller waiting
        for the answer until ``release()``; ``reached`` tells when it waits."""
        with self.world.lock:
            hold = Hold(email.lower(), kind, query)
            self.faults.holds.append(hold)
            return hold

    def clear_faults(self) -> None:
        with self.world.lock:
            self.faults.clear()
