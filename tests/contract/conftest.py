"""Runs the one contract suite over every provider that has a harness module here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

HARNESSES = sorted(m.name.removeprefix("harness_") for m in pkgutil.iter_modules(
    [str(Path(__file__).parent)]) if m.name.startswith("harness_"))


@pytest.fixture(params=HARNESSES)
def h(request: pytest.FixtureRequest) -> Iterator[object]:
    module = importlib.import_module(f"tests.contract.harness_{request.param}")
    with module.harness() as harness:
        yield harness
