"""The guard as an httpx transport: every request, redirect hops included, goes to an
address the policy checked, with TLS still verified against the name."""

from __future__ import annotations

import anyio
import httpx

from .policy import OutboundPolicy, is_ip_literal
from .redirects import MAX_REDIRECTS, REDIRECTS, RedirectRefused, check_scheme, next_hop

# Sent only to the origin that asked for them.
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves, checks and pins each request's address before ``inner`` connects, and
    follows up to ``max_redirects`` redirects itself (0: a redirect is the answer). Use it
    with a client whose ``follow_redirects`` is off, so the one redirect rule applies."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: OutboundPolicy, *,
                 max_redirects: int = MAX_REDIRECTS) -> None:
        self.inner = inner
        self.policy = policy
        self.max_redirects = max_redirects

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for followed in range(self.max_redirects + 1):
            response = await self._send(request)
            location = response.headers.get("Location")
            if not self.max_redirects or response.status_code not in REDIRECTS:
                return response
            await response.aclose()
            if followed == self.max_redirects:
                break
            request = await self._follow(request, response.status_code, location)
        raise RedirectRefused(f"more than {self.max_redirects} redirects")

    async def _send(self, request: httpx.Request) -> httpx.Response:
        check_scheme(str(request.url))
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = await anyio.to_thread.run_sync(self.policy.addresses, host, port)
        last_error: httpx.ConnectError | None = None
        for address in addresses:
            try:
                return await self.inner.handle_async_request(_pin(request, host, address))
            except httpx.ConnectError as exc:  # try the next address, as a browser would
                last_error = exc
        assert last_error is not None
        raise last_error

    @staticmethod
    async def _follow(request: httpx.Request, status: int,
                      location: str | None) -> httpx.Request:
        hop = next_hop(request.method, str(request.url), status, location)
        headers = httpx.Headers(request.headers)
        headers.pop("Host", None)  # httpx sets it again from the new URL
        for name in () if hop.same_origin else _CREDENTIAL_HEADERS:
            headers.pop(name, None)
        content = await request.aread() if hop.keep_body else None
        for name in () if hop.keep_body else _BODY_HEADERS:
            headers.pop(name, None)
        return httpx.Request(hop.method, hop.url, headers=headers, content=content,
                             extensions={k: v for k, v in request.extensions.items()
                                         if k != "sni_hostname"})

    async def aclose(self) -> None:
        await self.inner.aclose()


def _pin(request: httpx.Request, host: str, address: str) -> httpx.Request:
    # The Host header stays the name (httpx set it from the original URL); TLS keeps
    # verifying the certificate against the name through the sni_hostname extension.
    extensions = dict(request.extensions)
    if not is_ip_literal(host):
        extensions["sni_hostname"] = host
    return httpx.Request(request.method, request.url.copy_with(host=address),
                         headers=request.headers, stream=request.stream,
                         extensions=extensions)


def guarded_client(policy: OutboundPolicy, *, timeout: float,
                   max_redirects: int = MAX_REDIRECTS,
                   verify: object = True) -> httpx.AsyncClient:
    """An AsyncClient whose every connection goes through the guard. No keep-alive: a
    pooled connection is keyed by address, and reusing one across two names on the same
    address would skip the second name's TLS check. trust_env=False: a proxy from the
    environment would bypass the guard."""
    inner = httpx.AsyncHTTPTransport(verify=verify,  # type: ignore[arg-type]
                                     trust_env=False,
                                     limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.AsyncClient(transport=GuardedTransport(inner, policy,
                                                        max_redirects=max_redirects),
                             trust_env=False, follow_redirects=False,
                             timeout=httpx.Timeout(timeout))
