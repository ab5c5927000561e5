"""exchangelib, configured: the outbound guard on every session (exchangelib's documented
``HTTP_ADAPTER_CLS`` knob), the managed key as an extended property, explicit version and
auth type (no probing), and each client's protocol taken out of exchangelib's process-wide
cache as soon as it is made. exchangelib shares one protocol (sessions, connection pool,
back-off state, even a failure to create it) between all accounts with the same endpoint and
credentials: a push read closing its protocol would close the sessions of a sync of the same
mailbox running beside it, and a cached failure would be raised to every later account.
Kept private, a protocol lives and dies with its client."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from exchangelib import (
    BASIC,
    DELEGATE,
    NTLM,
    OAUTH2,
    Account,
    Build,
    CalendarItem,
    Configuration,
    Credentials,
    EWSTimeZone,
    ExtendedProperty,
    FailFast,
    OAuth2AuthorizationCodeCredentials,
    Version,
)
from exchangelib.protocol import BaseProtocol, Protocol
from requests_ntlm import HttpNtlmAuth

from ..errors import Unauthorized
from ..outbound import OutboundPolicy
from ..outbound.requests_adapter import GuardedAdapter, guarded
from . import autodiscover
from .errors import ExchangeOnline, translate
from .retry import wait_before_retry

T = TypeVar("T")

# Every exchangelib session (EWS and its own autodiscover) connects through the guard.
BaseProtocol.HTTP_ADAPTER_CLS = GuardedAdapter
# Exchange 2016 CU and later all speak this schema; naming it avoids a probe request.
EXCHANGE_2016 = Version(build=Build(15, 1, 2507, 6))
ONLINE_HOSTS = ("outlook.office365.com", "outlook.office.com", "outlook.live.com")


class _WithoutBodies(logging.Filter):
    """exchangelib logs every failed request with its request and response XML (event
    titles, attendees, bodies) at error level: keep the failure, drop the XML."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if any("Request XML:" in str(arg) for arg in args):
            record.msg, record.args = "EWS request failed: %s (request withheld)", (
                args[0],)
        return True


log = logging.getLogger("calgate.exchange")
_LOG = logging.getLogger("exchangelib.util")
if not any(isinstance(f, _WithoutBodies) for f in _LOG.filters):
    _LOG.addFilter(_WithoutBodies())


class CalgateKey(ExtendedProperty):  # type: ignore[misc]  # exchangelib is untyped
    """The client's event_id, on the items Calgate creates: a FindItem restriction on it
    finds the item again after a lost answer, so a retry never makes a duplicate."""

    property_set_id = "5a1f3c9e-6d62-4c1b-8f0e-3c0d5b7a4e21"
    property_name = "CalgateManagedKey"
    property_type = "String"


_REGISTER = threading.Lock()
_OPENING = threading.Lock()  # between making an account and taking its protocol private


def register_fields() -> None:
    with _REGISTER:
        if "calgate_key" not in {f.name for f in CalendarItem.FIELDS}:
            CalendarItem.register("calgate_key", CalgateKey)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and as whom: ``login`` is DOMAIN\\user (or the address), ``auth`` ntlm, basic
    or oauth (a bearer token from the client's token source; no password)."""

    email: str
    password: str
    ews_url: str = ""
    login: str = ""
    auth: str = "ntlm"
    ca_bundle: str | None = None
    timeout: float = 30.0


class TokenSource(typing.Protocol):
    """An OAuth access token for the mailbox (``fresh``: refreshed now, not the cache's)."""

    def __call__(self, fresh: bool = False) -> Awaitable[str]: ...


_AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC, "oauth": OAUTH2}
_DISCOVERED: dict[str, str] = {}  # email -> EWS URL autodiscover found (this process)


class EwsClient:
    """One mailbox. ``run`` calls exchangelib in a worker thread under the outbound guard
    and translates its failures."""

    def __init__(self, connection: Connection, policy: OutboundPolicy,
                 tokens: TokenSource | None = None) -> None:
        register_fields()
        self.connection = connection
        self.policy = policy
        self.tokens = tokens  # OAuth: a fresh (or still valid) access token per call
        self._token = ""
        self._account: Account | None = None

    async def run(self, call: Callable[[Account], T]) -> T:
        await self._use_token(fresh=False)
        try:
            return await self._run(call)
        except Unauthorized:
            if self.tokens is None:
                raise
            # Exchange refused a token before its time (a revoked session, clock skew): one
            # more try with a token refreshed now (a 401 applied nothing); a second refusal
            # stands, and the profile is relinked.
            await self._use_token(fresh=True)
            return await self._run(call)

    async def _use_token(self, fresh: bool) -> None:
        if self.tokens is None:
            return
        token = await self.tokens(fresh)
        if token != self._token:  # refreshed: the next session carries the new one
            self.close()
            self._token = token

    async def _run(self, call: Callable[[Account], T]) -> T:
        """``call`` in a worker thread, tried again after throttling, a 503 or a reset
        (:mod:`.retry`); its last failure raised as a provider error."""
        def work() -> T:
            attempt = 0
            while True:
                try:
                    return call(self.account())
                except Exception as exc:
                    wait = wait_before_retry(exc, attempt)
                    if wait is None:
                        failure = translate(exc)
                        if failure is exc:  # already ours: keep its own cause
                            raise
                        raise failure from exc
                    log.info("EWS call failed (%s); trying again in %.1f s",
                             type(exc).__name__, wait)
                time.sleep(wait)
                attempt += 1

        with guarded(self.policy, ca_bundle=self.connection.ca_bundle):
            return await anyio.to_thread.run_sync(work)

    def account(self) -> Account:
        if self._account is None:
            url = self.ews_url()
            config = Configuration(
                service_endpoint=url, credentials=self._credentials(),
                auth_type=_AUTH_TYPES[self.connection.auth],
                version=EXCHANGE_2016, retry_policy=FailFast())
            with _OPENING:
                account = Account(self.connection.email, config=config, autodiscover=False,
                                  access_type=DELEGATE, default_timezone=EWSTimeZone("UTC"))
                with contextlib.suppress(KeyError):
                    del Protocol[config]  # this client's alone from now on
            account.protocol.TIMEOUT = self.connection.timeout
            self._account = account
        return self._account

    def ews_url(self) -> str:
        url = self.connection.ews_url or _DISCOVERED.get(self.connection.email.lower())
        if not url:
            auth = HttpNtlmAuth(self._login(), self.connection.password)
            url = autodiscover.discover(self.connection.email, auth, self.connection.timeout)
            _DISCOVERED[self.connection.email.lower()] = url
        if any(host in url.lower() for host in ONLINE_HOSTS):
            raise ExchangeOnline("an Exchange Online mailbox: linked through Microsoft 365")
        return url

    def _login(self) -> str:
        return self.connection.login or self.connection.email

    def _credentials(self) -> Any:
        if self.connection.auth != "oauth":
            return Credentials(self._login(), self.connection.password)
        # Only the access token: exchangelib uses it as it is and never refreshes it itself
        # (no client secret given); run() swaps in a fresh one when the source refreshed.
        # The source tracks the real expiry; oauthlib only needs a time still ahead.
        token = {"access_token": self._token, "token_type": "Bearer",
                 "expires_at": time.time() + 86400}
        return OAuth2AuthorizationCodeCredentials(access_token=token)

    def close(self) -> None:
        account, self._account = self._account, None
        if account is None:
            return
        protocol: Any = account.protocol
        protocol.close()  # its own (see the module's docstring): nobody else's sessions
