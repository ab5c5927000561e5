"""Fixtures for the end-to-end tests: a real uvicorn server, a redirect target, a browser."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.e2e_server import REPO_ROOT, CallbackServer, GatewayServer

ARTIFACTS = REPO_ROOT / "test-artifacts" / "consent"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """One Calgate process per test module (each test registers its own client app)."""
    with GatewayServer(tmp_path_factory.mktemp("calgate-e2e")) as running:
        yield running


@pytest.fixture
def callback() -> Iterator[CallbackServer]:
    """The fake client app's redirect target, new for every test."""
    with CallbackServer() as target:
        yield target


def chromium_path() -> str:
    """Debian's chromium ($CHROMIUM wins); Playwright's own browser download is never used."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Shots:
    """Full-page screenshots named ``<test>-<nn>-<step>.png`` under test-artifacts/consent/."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0
        self.paths: list[Path] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{self.prefix}-*.png"):
            old.unlink()

    def __call__(self, page: object, step: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        self.paths.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)
