"""Who is calling: NTLM through pyspnego's real acceptor (per TCP connection, as IIS does),
Basic, and OAuth bearer tokens (hybrid modern authentication: a token Microsoft's identity
platform issued for this server's EWS resource, checked by the ``bearer`` verifier). Users
are ``DOMAIN\\user`` logins with a password and a mailbox address; the acceptor reads them
from the file named by ``NTLM_USER_FILE`` (``DOMAIN:USER:PASSWORD``)."""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import spnego

from .server import Request


@dataclass(frozen=True)
class User:
    domain: str
    login: str
    password: str
    email: str
    ews_enabled: bool = True
    locked: bool = False  # the directory locked it out (too many wrong passwords)


class Challenge(Exception):
    """Not (yet) authenticated: answer 401 with these WWW-Authenticate values."""

    def __init__(self, *offers: str) -> None:
        super().__init__("unauthenticated")
        self.offers = offers


class LockedOut(Exception):
    """The directory refused a locked-out account's sign-in. IIS answers 401 with the
    Windows error text ("The referenced account is currently locked out and may not be
    logged on to."), which is how clients tell it from a wrong password."""


class Authenticator:
    """NTLM, Basic and Bearer over one user table; ``schemes`` limits what the server
    offers. ``bearer`` maps a token to the address it was issued for (None: not valid for
    this server)."""

    def __init__(self, schemes: tuple[str, ...] = ("NTLM", "Basic"),
                 bearer: Callable[[str], str | None] | None = None) -> None:
        self.schemes = schemes
        self.bearer = bearer
        self.bearer_requests = 0
        self.bearer_refused = 0
        self.users: dict[str, User] = {}  # lower-case "domain\\login" and email -> user
        self._lock = threading.Lock()
        self._contexts: dict[int, spnego.ContextProxy] = {}
        self._authenticated: dict[int, User] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="ewsemu-ntlm-")
        self._file = Path(self._dir.name) / "users"
        self._file.write_text("")
        self.handshakes = 0

    def add(self, user: User) -> None:
        with self._lock:
            self.users[f"{user.domain}\\{user.login}".lower()] = user
            self.users[user.email.lower()] = user
            # The UPN form (alice@contoso.test, no domain) signs in as well, as with AD.
            lines = {line for u in self.users.values() for line in (
                f"{u.domain}:{u.login}:{u.password}", f":{u.email}:{u.password}")}
            self._file.write_text("\n".join(sorted(lines)) + "\n")

    def forget(self, email: str) -> None:
        """Connections authenticated as ``email`` must authenticate again."""
        with self._lock:
            self._authenticated = {k: u for k, u in self._authenticated.items()
                                   if u.email.lower() != email.lower()}

    def identify(self, request: Request) -> User:
        """The user this request is made by, or Challenge."""
        with self._lock:
            known = self._authenticated.get(request.connection)
        if known is not None:
            return known
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme == "Basic" and "Basic" in self.schemes:
            return _unless_locked(self._basic(value))
        if scheme == "NTLM" and "NTLM" in self.schemes:
            return _unless_locked(self._ntlm(request.connection, value))
        if scheme == "Bearer" and "Bearer" in self.schemes and self.bearer is not None:
            return _unless_locked(self._token(value))
        raise Challenge(*self.schemes)

    def _token(self, value: str) -> User:
        """A bearer token authenticates its own request only (not the connection)."""
        email = self.bearer(value) if self.bearer is not None else None
        user = self.users.get((email or "").lower())
        if user is None:
            with self._lock:
                self.bearer_refused += 1
            raise Challenge('Bearer error="invalid_token"')
        with self._lock:
            self.bearer_requests += 1
        return user

    def _basic(self, value: str) -> User:
        login, _, password = base64.b64decode(value).decode().partition(":")
        user = self.users.get(login.lower())
        if user is None or user.password != password:
            raise Challenge(*self.schemes)
        return user

    def _ntlm(self, connection: int, value: str) -> User:
        os.environ["NTLM_USER_FILE"] = str(self._file)  # read by the acceptor
        with self._lock:
            context = self._contexts.get(connection)
            if context is None:
                context = self._contexts[connection] = spnego.server(protocol="ntlm")
        try:
            out = context.step(base64.b64decode(value))
        except Exception:  # a wrong password fails the Type 3 message
            with self._lock:
                self._contexts.pop(connection, None)
            raise Challenge(*self.schemes) from None
        if not context.complete:
            raise Challenge("NTLM " + base64.b64encode(out or b"").decode())
        principal = str(context.client_principal or "")
        with self._lock:
            self._contexts.pop(connection, None)
            user = self.users[principal.lower().lstrip("\\")]
            if not user.locked:  # a locked-out account's connection stays unauthenticated
                self._authenticated[connection] = user
            self.handshakes += 1
        return user

    def cleanup(self) -> None:
        self._dir.cleanup()


def _unless_locked(user: User) -> User:
    if user.locked:
        raise LockedOut(user.email)
    return user
