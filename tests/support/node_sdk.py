"""The official Cronofy Node SDK (npm ``cronofy`` 3.8.4), unmodified, driven from Python tests.

``tests/node/driver.js`` runs a list of SDK calls in one Node process and prints their
results; this module keeps the SDK's ``config`` (tokens the SDK stores itself after
``requestAccessToken`` / ``refreshAccessToken``) between batches, so a test reads like an app
written against the SDK. ``scripts/test`` installs the package with ``npm ci`` from the
committed lock file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
DRIVER = NODE_DIR / "driver.js"


class NodeSdkMissing(RuntimeError):
    """Node.js or the SDK package is not installed (scripts/test installs both)."""


@dataclass(frozen=True)
class Result:
    ok: bool
    value: Any = None
    status: int | None = None
    body: Any = None

    def unwrap(self) -> Any:
        if not self.ok:
            raise AssertionError(f"Node SDK call failed: HTTP {self.status} {self.body!r}")
        return self.value


@dataclass
class NodeSdk:
    """One SDK client: ``new Cronofy(config)`` with ``urls.api`` pointed at ``base``."""

    base: str
    config: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0

    def call(self, method: str, args: dict[str, Any] | None = None) -> Result:
        return self.calls([(method, args or {})])[0]

    def calls(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Result]:
        node = shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "cronofy").is_dir():
            raise NodeSdkMissing(
                "Node.js and the cronofy package are needed: run scripts/test, or "
                "`npm ci --prefix tests/node`")
        request = {"base": self.base, "config": self.config,
                   "calls": [{"method": m, "args": a} for m, a in calls]}
        done = subprocess.run([node, str(DRIVER)], input=json.dumps(request).encode(),
                              capture_output=True, timeout=self.timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"Node SDK driver failed ({done.returncode}): "
                                 f"{done.stderr.decode(errors='replace')}")
        answer = json.loads(done.stdout)
        self.config = answer["config"]
        return [Result(ok=r["ok"], value=r.get("value"), status=r.get("status"),
                       body=r.get("body")) for r in answer["results"]]
