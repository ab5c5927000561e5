"""Graph's error answers: ``{"error": {"code", "message", "innerError": {...}}}`` with the
request-id headers Graph sends, and the identity platform's OAuth errors with AADSTS codes."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        request_id = str(uuid.uuid4())
        return {"error": {"code": self.code, "message": self.message,
                          "innerError": {"date": now, "request-id": request_id,
                                         "client-request-id": request_id}}}


def not_found(what: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", what)


def access_denied() -> GraphError:
    return GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and "
                      "try again.")


def invalid(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


class OAuthError(Exception):
    """An identity-platform error: ``error`` plus ``error_description`` starting with the
    AADSTS code, ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``."""

    def __init__(self, error: str, aadsts: int, description: str, status: int = 400,
                 suberror: str | None = None) -> None:
        super().__init__(description)
        self.error, self.aadsts, self.description = error, aadsts, description
        self.status, self.suberror = status, suberror

    def body(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        out: dict[str, Any] = {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description} "
                                 f"Trace ID: {uuid.uuid4()} Correlation ID: {uuid.uuid4()} "
                                 f"Timestamp: {now}",
            "error_codes": [self.aadsts], "timestamp": now,
            "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
        if self.suberror:
            out["suberror"] = self.suberror
        return out


# the identity platform's refusals that tests can configure per user
AADSTS_TEXT = {
    65001: "The user or administrator has not consented to use the application. Send an "
           "interactive authorization request for this user and resource.",
    90094: "The grant requires admin permission.",
    70000: "The request was denied because one or more scopes requested are unauthorized "
           "or expired. The user must first sign in and grant the client application access "
           "to the requested scope.",
    700082: "The refresh token has expired due to inactivity. The token was issued on "
            "a date long ago and was inactive for 90.00:00:00.",
    50020: "User account from identity provider does not exist in tenant and cannot access "
           "the application in that tenant.",
    500200: "User account is a personal Microsoft account. Personal Microsoft accounts are "
            "not supported for this application unless explicitly invited to an "
            "organization.",
    65004: "User declined to consent to access the app.",
}
