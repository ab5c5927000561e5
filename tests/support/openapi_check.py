"""Check a real response against the OpenAPI document: its status is documented for the
operation, its media type too, and its JSON body validates against the documented schema
(JSON Schema 2020-12, the dialect of OpenAPI 3.1), with the documented headers present."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from gateway.api.openapi import document
from tests.conftest import ISSUER

DOC = document(ISSUER)


def operation(method: str, template: str) -> dict[str, Any]:
    assert template in DOC["paths"], f"{template} is not in the document"
    found = DOC["paths"][template].get(method.lower())
    assert found is not None, f"{method} {template} is not in the document"
    return found


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    if ref.startswith("#/components/responses/"):
        return DOC["components"]["responses"][ref.rsplit("/", 1)[1]]
    return node


def validate(schema: dict[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks ``schema`` (whose refs point into the document)."""
    rooted = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "components": DOC["components"], **schema}
    validator = Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(value)]


def conforms(response: httpx.Response, method: str, template: str) -> httpx.Response:
    """Assert ``response`` is what the document promises for ``method template``."""
    responses = operation(method, template)["responses"]
    status = str(response.status_code)
    assert status in responses, (
        f"{method} {template} answered {status}, documented: {sorted(responses)}: "
        f"{response.text[:300]}")
    promised = _resolve(responses[status])
    for name, field in promised.get("headers", {}).items():
        if field.get("required"):
            assert name.lower() in response.headers, f"{method} {template} {status}: no {name}"
    content = promised.get("content")
    if not content:
        assert not response.content, f"{method} {template} {status}: body {response.text!r}"
        return response
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media in content, f"{method} {template} {status}: {media} not in {list(content)}"
    if media == "application/json":
        problems = validate(content[media]["schema"], response.json())
        assert not problems, f"{method} {template} {status}: {problems}\n{response.text[:500]}"
    return response
