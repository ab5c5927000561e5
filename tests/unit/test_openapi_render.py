"""docs/api.md is the OpenAPI document rendered for people, and is up to date."""

from __future__ import annotations

from pathlib import Path

from gateway.api.openapi import document
from gateway.api.openapi.render import SERVER, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_api_md_is_up_to_date():
    expected = render(document(SERVER))
    assert DOCS.read_text(encoding="utf-8") == expected, (
        "docs/api.md is stale: run `python -m gateway.api.openapi.render > docs/api.md`")


def test_every_operation_is_in_the_reference():
    text = render(document(SERVER))
    for path, item in document(SERVER)["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in text
