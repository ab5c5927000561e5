"""Starlette glue for the token, revocation, introspection and metadata endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from anyio import to_thread
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from starlette.requests import Request as HttpRequest
from starlette.responses import Response

from .server import CalgateServer, Request, TokenResponse


async def read_body_items(request: HttpRequest) -> list[tuple[str, str]]:
    """Body parameters from JSON (as the Cronofy SDKs send) or a form; never the query."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw:
        return []
    if ctype == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidRequestError("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidRequestError("The JSON body must be an object.")
        return [(str(k), _text(v)) for k, v in data.items() if v is not None]
    if ctype == "application/x-www-form-urlencoded":
        # What Starlette's form parser yields for this type, without its per-request
        # parser objects: latin-1 bytes, then percent-decoding as UTF-8.
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def oauth_json(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    """An OAuth JSON response; errors and tokens are never cached (RFC 6749 s5.1, s5.2)."""
    content = json.dumps(body if isinstance(body, dict) else dict(body), ensure_ascii=False,
                         allow_nan=False, separators=(",", ":")).encode()
    fields = {key.lower(): value for key, value in headers}
    fields |= _NEVER_CACHE
    return Response(content, status, fields, media_type="application/json")


_NEVER_CACHE = {"cache-control": "no-store", "pragma": "no-cache"}


def error_response(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return oauth_json(status, body, headers)


async def _oauth_request(request: HttpRequest) -> Request:
    items = await read_body_items(request)
    headers = dict(request.headers.items())
    remote = request.client.host if request.client else ""
    oauth_request = Request(request.method, str(request.url), items, headers, remote)
    if oauth_request.payload.repeated():
        raise InvalidRequestError("A parameter was sent more than once.")
    return oauth_request


def _handler(server: CalgateServer,
             work: Callable[[CalgateServer, Request], tuple[int, Any, list[tuple[str, str]]]]
             ) -> Callable[[HttpRequest], Any]:
    async def endpoint(request: HttpRequest) -> Response:
        try:
            oauth_request = await _oauth_request(request)
            status, body, headers = await to_thread.run_sync(work, server, oauth_request)
        except OAuth2Error as error:
            return error_response(error)
        if status == 200 and body == "":
            response = Response(status_code=200)
            response.headers["Cache-Control"] = "no-store"
            return response
        return oauth_json(status, body, headers)

    return endpoint


def _revoke(server: CalgateServer, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
    """RFC 7009 plus Cronofy's ``sub`` form: ends the whole authorization; always 200."""
    client = server.authenticate_client(request, ["client_secret_basic", "client_secret_post",
                                                  "none"], "revocation")
    data = request.payload.data
    token = data.get("token") or (None if data.get("sub") else data.get("refresh_token"))
    subject: str | None = None
    if token:
        found = server.store.lookup_any(token)
        if found is not None and found["client_id"] == client.client_id:
            subject = found["subject"]
        elif found is None:  # a refresh token that rotations superseded still names its grant
            superseded = server.store.find_superseded(token, client.client_id)
            subject = None if superseded is None else superseded[1]
    elif data.get("sub"):
        subject = data["sub"] if server.store.subject_belongs(data["sub"], client.client_id) \
            else None
    else:
        raise InvalidRequestError("Missing 'token'.")
    if subject is not None:
        server.end_authorization(subject, "revoked")
    return 200, "", []


APPLICATION_SCOPE = "read_write"  # what an application calendar's tokens carry (API.md s11)
MAX_APPLICATION_CALENDAR_ID = 200


def _application_calendar(server: CalgateServer, request: Request
                          ) -> tuple[int, Any, list[tuple[str, str]]]:
    """Cronofy's ``POST /v1/application_calendars``: the confidential client authenticates in
    the body (or with Basic) and gets tokens for its own calendar, made on the first call."""
    client = server.authenticate_client(request, ["client_secret_basic", "client_secret_post"],
                                        "application_calendars")
    name = request.payload.data.get("application_calendar_id", "")
    if not name.strip() or len(name) > MAX_APPLICATION_CALENDAR_ID:
        return 422, {"errors": {"application_calendar_id": [{
            "key": "errors.required" if not name.strip() else "errors.too_long",
            "description": "application_calendar_id must be 1 to "
                           f"{MAX_APPLICATION_CALENDAR_ID} characters"}]}}, []
    linked = server.host.application_calendar(client.client_id, name)
    issued = server.store.issue(client.client_id, linked.subject, APPLICATION_SCOPE)
    body = {"token_type": "bearer", **issued.as_dict(), "sub": linked.subject,
            "application_calendar_id": name,
            "linking_profile": {"provider_name": linked.provider_name,
                                "provider_service": linked.provider_service,
                                "profile_id": linked.profile_id,
                                "profile_name": linked.profile_name}}
    return 200, body, []


def _introspect(server: CalgateServer, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
    """RFC 7662, for the client the token was issued to; anything else is inactive."""
    client = server.authenticate_client(request, ["client_secret_basic", "client_secret_post"],
                                        "introspection")
    token = request.payload.data.get("token")
    if not token:
        raise InvalidRequestError("Missing 'token'.")
    info = server.store.introspect(token)
    if info is None or info["client_id"] != client.client_id:
        return 200, {"active": False}, []
    return 200, info, []


def token_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    # SQLite takes one writer at a time, so one thread is all a lane can use there; a
    # PostgreSQL server answers several connections at once, and over a network its round
    # trips, not our CPU, would otherwise bound the endpoint.
    lane = TokenLane(server, threads=1 if server.store.engine.dialect.name == "sqlite" else 4)

    async def endpoint(request: HttpRequest) -> Response:
        try:
            oauth_request = await _oauth_request(request)
            if "grant_type" not in oauth_request.payload.data:
                # RFC 6749 s5.2: a missing parameter is invalid_request (Authlib: unsupported).
                raise InvalidRequestError("Missing 'grant_type'.")
            status, body, headers = await lane.respond(oauth_request)
        except OAuth2Error as error:
            return error_response(error)
        if status == 200 and server.on_token_issued is not None:
            server.on_token_issued(oauth_request.payload.data["grant_type"])
        return oauth_json(status, body, headers)

    return endpoint


def revocation_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _revoke)


def application_calendar_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _application_calendar)


def introspection_endpoint(server: CalgateServer) -> Callable[[HttpRequest], Any]:
    return _handler(server, _introspect)


@dataclass(frozen=True, slots=True)
class _Job:
    request: Request
    future: asyncio.Future[TokenResponse]
    loop: asyncio.AbstractEventLoop


class TokenLane:
    """The token endpoint's blocking work: its own threads, taking queued requests in batches.

    A worker thread per request (anyio's pool) costs GIL hand-overs both ways and makes
    the threads queue for SQLite's one writer; here a busy endpoint pays one hand-over per
    batch, and each batch shares one commit (``CalgateServer.create_token_responses``).
    Measured in bench/HOTSPOTS.md. Threads start with work and stop after ``idle`` seconds
    without any.
    """

    def __init__(self, server: CalgateServer, threads: int = 1, idle: float = 5.0,
                 max_batch: int = 16) -> None:
        self._server = server
        self._max_threads = threads
        self._idle = idle
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0

    async def respond(self, request: Request) -> TokenResponse:
        """Authlib's token response to ``request``, computed in the lane's thread."""
        loop = asyncio.get_running_loop()
        job = _Job(request, loop.create_future(), loop)
        self._queue.put(job)
        with self._lock:
            if self._threads < self._max_threads:
                self._threads += 1
                threading.Thread(target=self._serve, name="calgate-token-lane",
                                 daemon=True).start()
        return await job.future

    def _serve(self) -> None:
        try:
            while jobs := self._take():  # _take() itself counts this thread out when idle
                try:
                    results = self._server.create_token_responses([j.request for j in jobs])
                except Exception as exc:  # e.g. no database connection: fail this batch
                    results = [exc] * len(jobs)
                _settle_all(jobs, results)
        except BaseException:
            with self._lock:
                self._threads -= 1
            raise

    def _take(self) -> list[_Job]:
        """The next batch: all that is queued, after waiting up to ``idle`` for the first."""
        while True:
            try:
                jobs = [self._queue.get(timeout=self._idle)]
                break
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # under the lock: respond() sees us stopping
                        self._threads -= 1
                        return []
        while len(jobs) < self._max_batch:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs


def _settle_all(jobs: list[_Job], results: list[TokenResponse | Exception]) -> None:
    """Hand the results back: one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_loop.setdefault(job.loop, []).append((job, result))
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, done)


def _settle(done: list[tuple[_Job, TokenResponse | Exception]]) -> None:
    for job, result in done:
        if job.future.done():  # the request was cancelled (client gone)
            continue
        if isinstance(result, Exception):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    from .scopes import KNOWN

    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/token/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/v1/userinfo",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "scopes_supported": sorted(KNOWN),
        "authorization_response_iss_parameter_supported": True,
    }
