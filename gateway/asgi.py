"""ASGI factory for uvicorn (``gateway.asgi:build``, factory mode): nothing runs at import."""

from __future__ import annotations

from starlette.applications import Starlette

from .app import Gateway, create_app
from .settings import Settings


def build() -> Starlette:
    return create_app(Gateway.build(Settings.from_env()))
