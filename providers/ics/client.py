"""Fetching one feed: conditional GET, gzip, a size cap enforced while streaming, and every
connection through the outbound guard. Raises httpx errors and the few below; ``errors.py``
translates them into the provider error tree."""

from __future__ import annotations

import ssl
import zlib
from dataclasses import dataclass

import anyio
import httpx

from ..outbound import OutboundPolicy
from ..outbound.httpx_transport import guarded_client
from .settings import DEFAULT_MAX_BYTES

_SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}


class FeedStatusError(Exception):
    """The feed server answered with a status other than 2xx or 304."""

    def __init__(self, status_code: int, retry_after: str | None) -> None:
        super().__init__(f"the feed server answered HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class FeedTooLarge(Exception):
    """The feed (decompressed) is bigger than the configured cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the feed is larger than the limit of {limit} bytes")
        self.limit = limit


class FeedEncodingError(Exception):
    """The body's Content-Encoding is unsupported or the compressed stream is broken."""


def normalise_url(url: str) -> str:
    """The URL Calgate fetches: webcal(s) becomes https, scheme and host lower case,
    default ports and fragments dropped. Raises ValueError for anything but http(s)/webcal."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid feed URL: {exc}") from None
    scheme = _SCHEMES.get(parsed.scheme)
    if scheme is None:
        raise ValueError("a feed URL must use http, https or webcal")
    if not parsed.host:
        raise ValueError("a feed URL needs a host")
    # Rebuilding through httpx.URL also drops the port when it is the scheme's default.
    return str(httpx.URL(str(parsed.copy_with(scheme=scheme, fragment=None))))


def public_url(url: str) -> str:
    """``url`` without user:password, for identifiers and messages."""
    return str(httpx.URL(url).copy_with(username=None, password=None))


@dataclass(frozen=True, slots=True)
class Validators:
    """What a conditional GET sends back: the feed's ETag and Last-Modified."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class FeedResponse:
    """A fetched feed: ``not_modified`` (a 304, empty body) or the whole decoded body."""

    not_modified: bool
    body: bytes
    validators: Validators
    content_type: str


class FeedClient:
    """Fetches one feed URL. Holds no connection between fetches: the provider is used
    from short-lived event loops, and an ICS feed is polled every few minutes at most."""

    def __init__(self, url: str, *, timeout: float, user_agent: str,
                 max_bytes: int = DEFAULT_MAX_BYTES, policy: OutboundPolicy | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.url = normalise_url(url)
        self.timeout = timeout
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.policy = policy or OutboundPolicy()
        self.verify = verify

    def _http(self) -> httpx.AsyncClient:
        return guarded_client(self.policy, timeout=self.timeout, verify=self.verify)

    def _headers(self, validators: Validators | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip",
                   "Accept": "text/calendar, */*;q=0.5"}
        return headers | (validators.headers() if validators else {})

    async def fetch(self, validators: Validators | None = None) -> FeedResponse:
        """GET the feed, conditionally when ``validators`` are given.

        The whole exchange (redirects and body included) must finish within the timeout,
        so a server dripping bytes cannot hold a worker forever.
        """
        with anyio.fail_after(self.timeout):
            async with self._http() as http, http.stream(
                    "GET", self.url, headers=self._headers(validators)) as response:
                return await self._read(response, validators)

    async def _read(self, response: httpx.Response,
                    sent: Validators | None) -> FeedResponse:
        received = Validators(response.headers.get("ETag"),
                              response.headers.get("Last-Modified"))
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 304 and sent is not None:
            # A 304 may refresh the validators; keep the old ones where it does not.
            kept = Validators(received.etag or sent.etag,
                              received.last_modified or sent.last_modified)
            return FeedResponse(True, b"", kept, content_type)
        if not response.is_success:
            raise FeedStatusError(response.status_code, response.headers.get("Retry-After"))
        body = await read_capped(response, self.max_bytes)
        return FeedResponse(False, body, received, content_type)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The decoded body, refusing more than ``limit`` bytes *after* decompression (a small
    gzip bomb must not become gigabytes). httpx's own decoder inflates a whole network
    chunk at once, so Calgate asks for gzip only and inflates with a bounded output."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip"):
        raise FeedEncodingError(f"unsupported Content-Encoding {encoding!r}")
    declared = response.headers.get("Content-Length", "")
    if encoding in ("identity", "") and declared.isdigit() and int(declared) > limit:
        raise FeedTooLarge(limit)
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16) if "gzip" in encoding else None
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        for part in _inflate(inflater, chunk, limit - size) if inflater else (chunk,):
            size += len(part)
            if size > limit:
                raise FeedTooLarge(limit)
            parts.append(part)
    if inflater is not None and not inflater.eof:
        raise FeedEncodingError("the gzip stream of the feed is truncated")
    return b"".join(parts)


def _inflate(inflater: zlib._Decompress, data: bytes, room: int) -> list[bytes]:
    """Inflate ``data``, stopping one byte past ``room`` (enough to know it is too big)."""
    parts: list[bytes] = []
    try:
        while data and not inflater.eof:
            part = inflater.decompress(data, max(room, 0) + 1)
            parts.append(part)
            room -= len(part)
            if room < 0:
                break
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise FeedEncodingError(f"the gzip stream of the feed is corrupt: {exc}") from None
    return parts
