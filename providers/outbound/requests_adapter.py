"""The guard for the ``requests`` stack (exchangelib sends every EWS and Autodiscover request
through a requests ``Session``): a transport adapter that resolves the name once through
:meth:`OutboundPolicy.addresses`, connects to a checked address while TLS still verifies
the certificate against the name, ignores proxies, and checks every redirect it is handed
by :func:`~.redirects.next_hop` and the policy before anyone can follow it.

exchangelib builds its adapters itself (``cls.HTTP_ADAPTER_CLS(pool_block=..., ...)``), so
the adapter cannot be given its policy as an argument there: it takes the policy in force
in the calling context (:func:`guarded`), and refuses to connect when there is none."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError

from .policy import OutboundPolicy, is_ip_literal
from .redirects import REDIRECTS, check_scheme, next_hop

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Guard:
    """What the adapter applies: the policy, and the operator's CA bundle (a file of PEM
    certificates trusted instead of the system's), if any."""

    policy: OutboundPolicy
    ca_bundle: str | None = None


_GUARD: ContextVar[Guard | None] = ContextVar("calgate_requests_guard", default=None)


class NoOutboundPolicy(RuntimeError):
    """A guarded adapter was used outside :func:`guarded`: a programming error, refused
    rather than connecting unchecked."""


@contextmanager
def guarded(policy: OutboundPolicy, *, ca_bundle: str | None = None) -> Iterator[None]:
    """Every :class:`GuardedAdapter` used in this context (and in threads started with a
    copy of it, as ``anyio.to_thread`` does) applies ``policy``."""
    token = _GUARD.set(Guard(policy, ca_bundle))
    try:
        yield
    finally:
        _GUARD.reset(token)


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter that connects only to addresses the policy checked. ``guard`` fixes
    the policy; without it the context's (:func:`guarded`) applies."""

    def __init__(self, guard: Guard | None = None, **kwargs: Any) -> None:
        self._guard = guard
        self._pinned = threading.local()  # (name, address) of the attempt under way
        super().__init__(**kwargs)

    @property
    def guard(self) -> Guard:
        guard = self._guard or _GUARD.get()
        if guard is None:
            raise NoOutboundPolicy("no outbound policy in force for this request")
        return guard

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: bool | str = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        guard = self.guard
        url = str(request.url)
        check_scheme(url)
        parts = urlsplit(url)
        name = parts.hostname or ""
        addresses = guard.policy.addresses(name, parts.port or _DEFAULT_PORTS[parts.scheme])
        # The request line carries the path only; Host must stay the name, not the address.
        request.headers["Host"] = parts.netloc.rpartition("@")[2]
        if guard.ca_bundle and verify is not False:
            verify = guard.ca_bundle
        last_error: requests.ConnectionError | None = None
        for address in addresses:
            self._pinned.value = (name, address)
            try:
                # proxies=None: a proxy from the environment would bypass the guard.
                response = super().send(request, stream, timeout, verify, cert, None)
            except requests.ConnectionError as exc:
                if not _not_connected(exc):
                    raise
                last_error = exc  # try the next address, as a browser would
                continue
            finally:
                self._pinned.value = None
            self._check_redirect(guard, request, response)
            return response
        assert last_error is not None
        raise last_error

    def get_connection_with_tls_context(self, request: requests.PreparedRequest,
                                        verify: bool | str,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: Any = None) -> Any:
        pinned = getattr(self._pinned, "value", None)
        if pinned is None:
            raise NoOutboundPolicy("a connection was asked for outside GuardedAdapter.send")
        name, address = pinned
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(
            request, verify, cert)
        host_params = {**host_params, "host": f"[{address}]" if ":" in address else address}
        if host_params["scheme"] == "https" and not is_ip_literal(name):
            # SNI and the certificate check stay on the name the user gave.
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    @staticmethod
    def _check_redirect(guard: Guard, request: requests.PreparedRequest,
                        response: requests.Response) -> None:
        """A redirect is refused here, before a caller can follow it, when the one rule
        (:func:`next_hop`) or the policy refuses its target."""
        if response.status_code not in REDIRECTS:
            return
        try:
            hop = next_hop(str(request.method), str(request.url), response.status_code,
                           response.headers.get("Location"))
            target = urlsplit(hop.url)
            guard.policy.addresses(target.hostname or "",
                                   target.port or _DEFAULT_PORTS[target.scheme])
        except Exception:
            response.close()
            raise


def _not_connected(exc: requests.ConnectionError) -> bool:
    """True when no connection was made (so nothing was sent): only then is the next
    address tried. urllib3's NewConnectionError is a ConnectTimeoutError."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, ConnectTimeoutError)
