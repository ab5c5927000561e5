"""Checks every Calendar API request against the discovery document googleapiclient ships
(``googleapiclient/discovery_cache/documents/calendar.v3.json``): which method a path is,
its query parameters (unknown, repeated, type, enum, minimum/maximum, format), its request
body (property names and JSON types, recursively through ``$ref``) and the OAuth scopes
the method accepts. Violations raise :class:`ApiError` 400, as Google answers them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

from .errors import ApiError, invalid, required

DOCUMENT_PATH = ("discovery_cache", "documents", "calendar.v3.json")


@cache
def document() -> dict[str, Any]:
    path = resources.files("googleapiclient").joinpath(*DOCUMENT_PATH)
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@dataclass(frozen=True)
class Method:
    """One method of the document, e.g. ``events.list``."""

    name: str  # "events.list"
    http_method: str
    template: str  # "calendars/{calendarId}/events"
    pattern: re.Pattern[str]
    parameters: dict[str, dict[str, Any]]
    scopes: frozenset[str]
    request: str | None  # schema name of the body
    literals: int  # literal path segments, so "events/watch" beats "events/{eventId}"

    def path_params(self, path: str) -> dict[str, str] | None:
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        return {k: unquote(v) for k, v in match.groupdict().items()}


def _compile(template: str) -> tuple[re.Pattern[str], int]:
    parts, literals = [], 0
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1].lstrip('+')}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literals += 1
    return re.compile("/".join(parts)), literals


@cache
def methods() -> tuple[Method, ...]:
    found = []
    for resource_name, resource in document()["resources"].items():
        for method_name, spec in resource["methods"].items():
            pattern, literals = _compile(spec["path"])
            found.append(Method(
                name=f"{resource_name}.{method_name}", http_method=spec["httpMethod"],
                template=spec["path"], pattern=pattern,
                parameters=spec.get("parameters", {}),
                scopes=frozenset(spec.get("scopes", ())),
                request=spec.get("request", {}).get("$ref"), literals=literals))
    return tuple(sorted(found, key=lambda m: -m.literals))


def method_named(name: str) -> Method:
    return next(m for m in methods() if m.name == name)


def match(http_method: str, path: str) -> tuple[Method, dict[str, str]]:
    """The method a request is for (``path`` relative to ``calendar/v3/``)."""
    for method in methods():
        if method.http_method != http_method:
            continue
        params = method.path_params(path)
        if params is not None:
            return method, params
    raise ApiError(404, "notFound", f"Not Found: {http_method} /calendar/v3/{path}")


def known_scopes() -> frozenset[str]:
    return frozenset(document()["auth"]["oauth2"]["scopes"])


def scope_descriptions() -> dict[str, str]:
    return {k: v["description"] for k, v in document()["auth"]["oauth2"]["scopes"].items()}


# -- query parameters ---------------------------------------------------------------------

def check_query(method: Method, query: dict[str, list[str]]) -> dict[str, Any]:
    """Typed values of the query parameters, or ApiError 400 like Google's."""
    globals_ = document()["parameters"]
    values: dict[str, Any] = {}
    for name, raw in query.items():
        spec = method.parameters.get(name) or globals_.get(name)
        if spec is None or spec.get("location") == "path":
            raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\": Cannot "
                          f"bind query parameter. Field '{name}' could not be found in "
                          "request message.", location=name)
        if len(raw) > 1 and not spec.get("repeated"):
            raise invalid(f"Parameter {name} may be given only once.", location=name)
        typed = [_typed(name, spec, v) for v in raw]
        values[name] = typed if spec.get("repeated") else typed[0]
    for name, spec in method.parameters.items():
        if spec.get("required") and spec.get("location") == "query" and name not in values:
            raise required(name)
    return values


def _typed(name: str, spec: dict[str, Any], raw: str) -> Any:
    kind = spec.get("type")
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise invalid(f"Invalid value '{raw}' for boolean parameter {name}.",
                          location=name)
        return raw == "true"
    if kind == "integer":
        try:
            number = int(raw)
        except ValueError:
            raise invalid(f"Invalid value '{raw}'. Values must be integers.",
                          location=name) from None
        if "minimum" in spec and number < int(spec["minimum"]):
            raise invalid(f"Invalid value '{raw}'. Values must be within the range: "
                          f"[{spec['minimum']}, {spec.get('maximum', '')}]", location=name)
        if "maximum" in spec and number > int(spec["maximum"]):
            raise invalid(f"Invalid value '{raw}'. Values must be within the range: "
                          f"[{spec.get('minimum', '')}, {spec['maximum']}]", location=name)
        return number
    if "enum" in spec and raw not in spec["enum"]:
        raise invalid(f"Invalid value for {name}: {raw}", location=name)
    if spec.get("format") == "date-time":
        return parse_rfc3339(raw, name)
    return raw


def parse_rfc3339(raw: str, name: str) -> datetime:
    """An RFC 3339 date-time with an offset (Google refuses one without)."""
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise invalid(f"Bad Request: invalid {name} value '{raw}'", location=name) from None
    if value.tzinfo is None:
        raise invalid(f"Bad Request: {name} needs a time zone offset", location=name)
    return value


# -- request bodies -----------------------------------------------------------------------

def check_body(method: Method, body: Any) -> None:
    """The body matches the method's request schema (None values are allowed anywhere:
    a PATCH clears a field with null)."""
    if method.request is None:
        return
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    _check({"$ref": method.request}, body, "")


def _check(schema: dict[str, Any], value: Any, where: str) -> None:
    if value is None:
        return
    if "$ref" in schema:
        schema = document()["schemas"][schema["$ref"]]
    kind = schema.get("type")
    if kind == "object":
        _check_object(schema, value, where)
    elif kind == "array":
        if not isinstance(value, list):
            raise _wrong_type(where, "array")
        for i, item in enumerate(value):
            _check(schema.get("items", {}), item, f"{where}[{i}]")
    elif kind == "string":
        _check_string(schema, value, where)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(where, "integer")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _wrong_type(where, "boolean")
    elif kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _wrong_type(where, "number")


def _check_object(schema: dict[str, Any], value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _wrong_type(where, "object")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        name = f"{where}.{key}" if where else key
        if key in properties:
            _check(properties[key], item, name)
        elif extra is not None:
            _check(extra, item, name)
        else:
            raise invalid(f"Invalid JSON payload received. Unknown name \"{key}\" at "
                          f"'{where or 'resource'}': Cannot find field.")


def _check_string(schema: dict[str, Any], value: Any, where: str) -> None:
    if schema.get("format") == "int64" and isinstance(value, int) and not isinstance(
            value, bool):
        return  # proto3 JSON takes int64 as a number or a string
    if not isinstance(value, str):
        raise _wrong_type(where, "string")
    if schema.get("format") == "date-time":
        # An event's start.dateTime may omit the offset when timeZone is given: the event
        # logic checks that; here only the syntax.
        try:
            datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise invalid(f"Invalid value for {where}: {value}") from None
    elif schema.get("format") == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise invalid(f"Invalid value for {where}: {value}") from None


def _wrong_type(where: str, kind: str) -> ApiError:
    return invalid(f"Invalid value at '{where}': expected {kind}")
