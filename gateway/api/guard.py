"""What no handler may ever see, refused at the edge: NUL bytes and lone surrogates (in the
path, the query string, form and JSON bodies) and JSON nested deeper than any request needs.

PostgreSQL cannot store a NUL in a text value and UTF-8 cannot encode a lone surrogate, so
either one reaching a query, a seal or an upstream payload used to become a 500 or a write
the worker could never apply. Refusing them here covers every endpoint at once, including
the unauthenticated ``/oauth`` ones. ``/oauth/*`` answers in RFC 6749's shape (s5.2), the
rest in Cronofy's 422 shape (API.md s10.1).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_DEPTH = 32  # the deepest real request (a batch entry's attendees) is 5 levels
# The largest real request, a batch of 50 events with full descriptions and attendee lists,
# is a few hundred KiB; a body is buffered whole, so an unbounded one would be a memory DoS.
MAX_BODY_BYTES = 2 * 1024 * 1024


class BadInput(Exception):
    """Input refused at the edge; ``field`` names where (``path``, a parameter, ``request``)."""

    def __init__(self, field: str, code: str, description: str, status: int = 422) -> None:
        super().__init__(description)
        self.field = field
        self.code = code
        self.description = description
        self.status = status


class InputGuard:
    """A pure ASGI middleware: checks the path, the query and the whole body, then hands the
    buffered body on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body, replay = await _buffer(receive, _content_length(scope))
            check_path(scope)
            check_pairs(scope.get("query_string", b""))
            check_body(_content_type(scope), body,
                       files=scope["path"].startswith(_FILE_POSTS))
        except BadInput as exc:
            await refusal(scope["path"], exc)(scope, receive, send)
            return
        await self.app(scope, replay, send)


# Pages a person's browser opens (the consent flow): refused input is a page, not JSON.
_BROWSER_PAGES = ("/oauth/authorize", "/oauth/flow/", "/oauth/callback/", "/oauth/relink/",
                  "/permissions/")
_BROWSER_REFUSAL = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<title>This link cannot be used</title></head><body><main>"
                    "<h1>This link cannot be used</h1><p>The address or the form holds "
                    "characters that no real request contains. Go back to the app you came "
                    "from and start again.</p></main></body></html>")


def refusal(path: str, exc: BadInput) -> Response:
    """The answer to refused input in the shape the endpoint's clients parse."""
    if path.startswith(_BROWSER_PAGES):
        return HTMLResponse(_BROWSER_REFUSAL, status_code=413 if exc.status == 413 else 400,
                            headers={"Cache-Control": "no-store"})
    if path.startswith("/oauth"):
        return JSONResponse({"error": "invalid_request", "error_description": exc.description},
                            status_code=413 if exc.status == 413 else 400,
                            headers={"Cache-Control": "no-store"})
    if exc.status == 413:
        return JSONResponse({"error": "request_too_large", "description": exc.description},
                            status_code=413)
    return JSONResponse({"errors": {exc.field: [
        {"key": f"errors.{exc.code}", "description": exc.description}]}}, status_code=422)


def check_path(scope: Scope) -> None:
    raw = scope.get("raw_path")
    if raw:
        _check_bytes("path", unquote_to_bytes(raw.split(b"?", 1)[0]))
    check_text("path", scope["path"])


def check_pairs(raw: bytes) -> None:
    """A query string or form body: every name and value, percent-decoded, must be clean
    UTF-8 text without NUL."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        field = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        field = field.removesuffix("[]") or "request"
        _check_bytes(field, unquote_to_bytes(name.replace(b"+", b" ")))
        _check_bytes(field, unquote_to_bytes(value.replace(b"+", b" ")))


# Posts whose multipart bodies may carry files: inbound-mail services post a mail's
# attachments as file parts, and a binary attachment holds NUL bytes. Their text fields are
# still parsed by the handler, never stored as they come.
_FILE_POSTS = ("/inbound/",)


def check_body(content_type: str, body: bytes, files: bool = False) -> None:
    if not body.strip():
        return
    if content_type == "application/x-www-form-urlencoded":
        check_pairs(body)
    elif content_type == "multipart/form-data":
        if b"\x00" in body and not files:  # the API takes text fields, never a file
            raise BadInput("request", "invalid_characters", "the body contains a NUL byte")
    elif "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
        check_json(body)


def check_json(body: bytes) -> None:
    _check_bytes("request", body)
    try:
        value = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return  # not JSON: the handler answers that in its own words
    _walk(value)


def _walk(value: Any) -> None:
    """Every key and string of a JSON document, without recursion (its depth is untrusted)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "request")]
    while stack:
        item, depth, field = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(item, str):
            check_text(field, item)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(field if depth else key, key)
                stack.append((child, depth + 1, key if depth == 0 else field))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, field) for child in item)


def check_text(field: str, text: str) -> None:
    """No NUL and no lone surrogate (what ``\\ud800`` in JSON decodes to)."""
    if "\x00" in text:
        raise BadInput(field, "invalid_characters", f"{field} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(field, "invalid_characters",
                           f"{field} contains a lone surrogate, which is not text") from None


def _check_bytes(field: str, raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(field, "invalid_characters", f"{field} is not valid UTF-8") from None
    if "\x00" in text:
        raise BadInput(field, "invalid_characters", f"{field} contains a NUL character")


def _too_deep() -> BadInput:
    return BadInput("request", "too_deep", f"the JSON body is nested deeper than {MAX_DEPTH}")


def _too_large() -> BadInput:
    return BadInput("request", "too_large",
                    f"the request body is larger than {MAX_BODY_BYTES} bytes", status=413)


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return 0


def _content_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            text: str = value.decode("latin-1")
            return text.split(";")[0].strip().lower()
    return ""


async def _buffer(receive: Receive, declared: int) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that delivers it again, then defers to the
    server's (for the disconnect message). Refuses a body over the limit before reading it
    when its length is declared, and as soon as it grows past the limit when it is not."""
    if declared > MAX_BODY_BYTES:
        raise _too_large()
    size = 0
    chunks: list[bytes] = []
    pending: list[Message] = []  # a disconnect seen while reading, delivered in its turn
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending.append(message)
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            raise _too_large()
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return pending.pop() if pending else await receive()

    return body, replay
