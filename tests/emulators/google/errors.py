"""Errors in the shape Google's JSON APIs answer them (the ``error`` object with ``code``,
``message``, ``errors[]`` and ``status``), which googleapiclient's ``HttpError`` parses."""

from __future__ import annotations

from typing import Any

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ALREADY_EXISTS", 410: "ABORTED", 412: "FAILED_PRECONDITION",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class ApiError(Exception):
    """An error answer of the Calendar API."""

    def __init__(self, code: int, reason: str, message: str, *, domain: str = "global",
                 location: str | None = None, location_type: str | None = None,
                 headers: dict[str, str] | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"domain": self.domain, "reason": self.reason,
                                "message": self.message}
        if self.location:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.code in STATUS:
            error["status"] = STATUS[self.code]
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str, *, reason: str = "invalid", location: str | None = None) -> ApiError:
    return ApiError(400, reason, message, location=location)


def required(name: str) -> ApiError:
    return ApiError(400, "required", f"Required parameter: {name}", location=name)


def not_found(message: str = "Not Found") -> ApiError:
    return ApiError(404, "notFound", message)


def gone() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def unauthenticated(message: str = "Request had invalid authentication credentials. Expected "
                    "OAuth 2 access token, login cookie or other valid authentication "
                    "credential.") -> ApiError:
    return ApiError(401, "authError", message, location="Authorization",
                    location_type="header",
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                                 'error="invalid_token"'})


def insufficient_scopes(api_method: str) -> ApiError:
    return ApiError(403, "insufficientPermissions",
                    "Request had insufficient authentication scopes.",
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                                 'error="insufficient_scope"'},
                    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                              "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                              "domain": "googleapis.com",
                              "metadata": {"service": "calendar-json.googleapis.com",
                                           "method": f"calendar.v3.{api_method}"}}])


def writer_access() -> ApiError:
    return ApiError(403, "requiredAccessLevel",
                    "You need to have writer access to this calendar.")


def full_sync_required() -> ApiError:
    return ApiError(410, "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                    domain="calendar")


def precondition_failed() -> ApiError:
    return ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match",
                    location_type="header")


def quota(code: int, reason: str, retry_after: float | None) -> ApiError:
    """A throttling answer: 403 rateLimitExceeded / userRateLimitExceeded or 429."""
    messages = {"rateLimitExceeded": "Rate Limit Exceeded",
                "userRateLimitExceeded": "User Rate Limit Exceeded",
                "quotaExceeded": "Calendar usage limits exceeded."}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return ApiError(code, reason, messages.get(reason, reason), domain="usageLimits",
                    headers=headers)


def backend(code: int, retry_after: float | None = None) -> ApiError:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    message = "Backend Error" if code != 503 else "The service is currently unavailable."
    return ApiError(code, "backendError", message, headers=headers)
