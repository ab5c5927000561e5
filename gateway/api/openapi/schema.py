"""Building blocks of the OpenAPI document: shared schemas, parameters and error responses.

Everything here is a constant or a small pure function returning fresh dicts; the document
itself is assembled once, when the app is built (``gateway.api.openapi.document``).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"

# Cronofy's Time (API.md s1.4): Z, UTC or an offset; seconds optional; no milliseconds.
TIME_PATTERN = (r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.0{1,9})?\s*"
                r"(Z|z|UTC|utc|[+-]\d{2}:?\d{2})$")
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def response_ref(name: str) -> Json:
    return {"$ref": f"#/components/responses/{name}"}


def obj(properties: dict[str, Json], required: tuple[str, ...] = (), *,
        extra: bool = True, description: str | None = None) -> Json:
    """An object schema; ``extra`` says whether keys beyond ``properties`` may appear."""
    schema: Json = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def string(description: str | None = None, **constraints: Any) -> Json:
    schema: Json = {"type": "string", **constraints}
    if description:
        schema["description"] = description
    return schema


def array(items: Json, **constraints: Any) -> Json:
    return {"type": "array", "items": items, **constraints}


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


BOOL_PARAM: Json = {
    "description": "true/false in any case, or 1/0",
    "anyOf": [{"type": "boolean"},
              {"type": "string", "enum": ["true", "false", "True", "False", "1", "0"]}],
}


def json_content(schema: Json) -> Json:
    return {JSON: {"schema": schema}}


def reply(description: str, schema: Json | None = None, *, media: str = JSON,
          headers: Json | None = None) -> Json:
    """A response object; ``schema`` None means an empty body."""
    answer: Json = {"description": description}
    if schema is not None:
        answer["content"] = {media: {"schema": schema}}
    if headers:
        answer["headers"] = headers
    return answer


def body(schema: Json, *, form: bool = True, required: bool = True) -> Json:
    """A request body read as JSON or, where Cronofy's SDKs may send one, as a form."""
    content: Json = {JSON: {"schema": schema}}
    if form:
        content[FORM] = {"schema": schema}
    return {"required": required, "content": content}


def query(name: str, schema: Json, description: str, *, required: bool = False) -> Json:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


def path(name: str, description: str, **constraints: Any) -> Json:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, **constraints}}


def header(description: str, schema: Json | None = None, *, required: bool = False) -> Json:
    return {"description": description, "required": required,
            "schema": schema or {"type": "string"}}


# -- errors --------------------------------------------------------------------------------

_ERROR_DETAIL = obj({
    "key": string("errors.<code>, e.g. errors.required", pattern=r"^errors\.[a-z_]+$"),
    "description": string("what is wrong, in plain words"),
}, ("key", "description"))

SCHEMAS: dict[str, Json] = {
    "ValidationErrors": obj({"errors": {
        "type": "object", "minProperties": 1,
        "description": "one entry per refused field (Cronofy's 422 shape)",
        "additionalProperties": array(_ERROR_DETAIL, minItems=1)}}, ("errors",)),
    "Error": obj({
        "error": string("a machine-readable code, e.g. not_found, invalid_token, "
                        "insufficient_scope, calendar_readonly, relink_required, "
                        "provider_unavailable, service_unavailable, server_error"),
        "description": string("more about the error, where there is more to say"),
        "required_scope": string("the scope the operation needs (403 insufficient_scope)"),
    }, ("error",)),
    "OAuthError": obj({
        "error": string("RFC 6749 s5.2 error code", enum=[
            "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
            "unsupported_grant_type", "invalid_scope", "unsupported_token_type",
            "insecure_transport", "access_denied", "server_error"]),
        "error_description": string(),
        "error_uri": string(format="uri"),
        "state": string(),
    }, ("error",)),
}

_CHALLENGE = {"WWW-Authenticate": header(
    'Bearer challenge (RFC 6750), e.g. Bearer realm="calgate", error="invalid_token"',
    required=True)}
_SCOPE_CHALLENGE = {"WWW-Authenticate": header(
    'with error insufficient_scope: Bearer error="insufficient_scope", scope="…"')}
_RETRY = {"Retry-After": header("seconds to wait before retrying",
                                {"type": "string", "pattern": r"^\d+$"}, required=True)}

RESPONSES: dict[str, Json] = {
    "Invalid": reply("A parameter was refused (Cronofy's validation shape).",
                     ref("ValidationErrors")),
    "Unauthorized": reply("The bearer token is missing, unknown, expired or revoked: refresh "
                          "it and retry.", ref("Error"), headers=_CHALLENGE),
    "Forbidden": reply("The token lacks the scope (or the calendar the permission) this "
                       "needs.", ref("Error"), headers=_SCOPE_CHALLENGE),
    "NotFound": reply("No such resource for this account.", ref("Error")),
    "Unavailable": reply("A backing service (the database, the secret store or the upstream "
                         "provider) is unavailable; nothing was done.", ref("Error"),
                         headers=_RETRY),
    "OAuthError": reply("RFC 6749 error.", ref("OAuthError")),
    "OAuthClientError": reply(
        "Client authentication failed (invalid_client).", ref("OAuthError"),
        headers={"WWW-Authenticate": header('Basic realm="calgate"', required=True)}),
    "OAuthThrottled": reply(
        "Too many failed client authentications from this address for this client.",
        ref("OAuthError"), headers=_RETRY),
    "ServerError": reply("An unexpected error; details are in the server's log only.",
                         ref("Error")),
    "TooLarge": reply("The request body is over 2 MiB ({\"error\": \"request_too_large\"}).",
                      ref("Error")),
}


def errors(*statuses: int) -> Json:
    """The /v1 error responses an operation can give, besides 401, 422, 500 and 503
    (always)."""
    named = {400: "Invalid", 403: "Forbidden", 404: "NotFound", 422: "Invalid"}
    answers = {str(s): response_ref(named[s]) for s in statuses}
    if 422 in statuses:  # a body (or query) is read: the edge's size limit applies too
        answers["413"] = response_ref("TooLarge")
    # Any request may be refused at the edge for input no real client sends (a NUL in the
    # path or query string): 422 in Cronofy's validation shape, whatever the operation.
    return answers | {"401": response_ref("Unauthorized"), "422": response_ref("Invalid"),
                      "500": response_ref("ServerError"), "503": response_ref("Unavailable")}


BEARER: list[Json] = [{"bearer": []}]
SECURITY_SCHEMES: Json = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An access token from POST /oauth/token."},
    "clientBasic": {"type": "http", "scheme": "basic",
                    "description": "client_id and client_secret (client_secret_basic); they "
                                   "may instead be sent in the body (client_secret_post)."},
}
