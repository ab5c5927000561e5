"""Every shell command in the README (and in the docs it sends readers to) runs as written.

The convention, also described under "Tests" in the README:

- Each fenced ``sh`` block is run with bash (``set -euo pipefail``), in document order, from
  the repository root, with the project's ``.venv/bin`` first on PATH and a fresh
  ``CALGATE_DATA_DIR`` in a temporary folder. Variables a block sets are kept for the blocks
  after it (``ID=$(calgate clients create …)`` then ``calgate clients show "$ID"``).
- ``http://127.0.0.1:8080`` (the default address) becomes a free port's address, and
  ``CALGATE_PORT`` is set to it, so the run never collides with a gateway already running.
- Variables the text asks the reader to set (``GOOGLE_CLIENT_ID``, …) get example values:
  :data:`READER_VARIABLES`.
- ``<!-- readme-test: background until URL -->`` before a block: it is a server; it is
  started in its own process group, the next block runs once URL answers 2xx, and it is
  stopped (by that group's id) when the document is done.
- ``<!-- readme-test: skip (reason) -->`` before a block: it needs what a test machine does
  not have (a cluster, a registry); the reason is required, and every ``calgate`` command
  line in it is still parsed by the real CLI parser, so a missing required flag fails here.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.cli.main import _parser
from tests.support.e2e_server import REPO_ROOT
from tests.support.processes import free_port
from tests.support.waiting import eventually

DOCUMENTS = ("README.md", "docs/developing.md")
FENCE = re.compile(r"(?:<!--\s*readme-test:\s*(?P<directive>[^>]*?)\s*-->\n)?"
                   r"^```(?P<lang>[A-Za-z]*)\n(?P<body>.*?)^```$", re.S | re.M)
READER_VARIABLES = {"GOOGLE_CLIENT_ID": "1234-example.apps.googleusercontent.com",
                    "GOOGLE_CLIENT_SECRET": "example-google-secret",
                    "ENTRA_CLIENT_ID": "00000000-0000-0000-0000-00000000c0de",
                    "ENTRA_CLIENT_SECRET": "example-entra-secret"}
DEFAULT_ADDRESS = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    body: str
    directive: str  # "", "skip (…)" or "background until URL"

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def shell_blocks(document: str) -> list[Block]:
    text = (REPO_ROOT / document).read_text()
    return [Block(document, text.count("\n", 0, m.start("body")) + 1, m.group("body"),
                  m.group("directive") or "")
            for m in FENCE.finditer(text) if m.group("lang") in {"sh", "bash", "shell"}]


def calgate_lines(body: str) -> Iterator[list[str]]:
    """The argument lists of every ``calgate`` command in a block (continuations joined)."""
    for line in body.replace("\\\n", " ").splitlines():
        if "calgate" not in line.split():
            continue  # other tools' lines need not be valid to shlex
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            # The command, not a release or folder named calgate (`helm install calgate …`).
            if word == "calgate" and (i == 0 or words[i - 1] in {"--", "|", "&&", "||", ";"}):
                yield words[i + 1:]


class Session:
    """bash runs of one document's blocks, sharing exported variables between blocks."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.state = tmp / "state.sh"
        self.state.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")} | {
            "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "CALGATE_DATA_DIR": str(tmp / "data"), "CALGATE_PORT": str(self.port),
            **READER_VARIABLES}
        self.servers: list[subprocess.Popen[bytes]] = []

    def script(self, block: Block) -> str:
        body = block.body.replace(DEFAULT_ADDRESS, self.address)
        # set -a: every variable a block assigns is exported, so `export -p` carries it on.
        return (f"set -a\nsource {shlex.quote(str(self.state))}\nset -euo pipefail\n"
                f"cd {shlex.quote(str(REPO_ROOT))}\n{body}")

    def run(self, block: Block) -> None:
        script = self.script(block) + f"\nexport -p > {shlex.quote(str(self.state))}\n"
        done = subprocess.run(["bash", "-c", script], env=self.env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, f"{block} failed:\n{done.stdout}\n{done.stderr}"

    def start(self, block: Block) -> None:
        url = block.directive.split("until", 1)[1].strip().replace(DEFAULT_ADDRESS,
                                                                    self.address)
        with open(self.tmp / f"server-{block.line}.log", "wb") as log:
            server = subprocess.Popen(
                ["bash", "-c", "exec 0</dev/null\n" + self.script(block)], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.servers.append(server)
        eventually(lambda: server.poll() is not None or _answers(url), timeout=300)
        assert server.poll() is None, f"{block} exited: {self._log(block)}"

    def _log(self, block: Block) -> str:
        return (self.tmp / f"server-{block.line}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)  # the group this test created
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()



def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).is_success
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_shell_block_runs(document: str, tmp_path: Path) -> None:
    session = Session(tmp_path)
    ran = 0
    try:
        for block in shell_blocks(document):
            if block.directive.startswith("skip"):
                continue
            if block.directive.startswith("background"):
                session.start(block)
            else:
                assert not block.directive, f"{block}: unknown directive {block.directive!r}"
                session.run(block)
            ran += 1
    finally:
        session.stop()
    assert ran >= 3


@pytest.mark.parametrize("document", DOCUMENTS)
def test_skipped_blocks_say_why_and_their_calgate_commands_parse(document: str) -> None:
    parser = _parser()
    skipped = [b for b in shell_blocks(document) if b.directive.startswith("skip")]
    for block in skipped:
        assert re.fullmatch(r"skip \(.{10,}\)", block.directive), f"{block}: give a reason"
        for args in calgate_lines(block.body):
            try:
                parser.parse_args(args)
            except SystemExit:
                pytest.fail(f"{block}: `calgate {' '.join(args)}` does not parse")


def test_the_readme_sends_nobody_to_files_outside_the_repository() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert "shared design" not in text and "API.md" not in text and "../shared" not in text
    for target in re.findall(r"\]\(((?:docs|bench|helm)/[^)#]+)", text):
        if target != "docs/api.md":  # generated from the OpenAPI document by its own task
            assert (REPO_ROOT / target).exists(), target


def test_the_readme_documents_every_flag_of_the_commands_it_shows() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    parser = _parser()
    for command in (["serve"], ["clients", "create"]):
        sub = parser
        for word in command:
            sub = next(a for a in sub._actions
                       if isinstance(a, argparse._SubParsersAction)).choices[word]
        flags = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        missing = [f for f in flags if f != "--help" and f"`{f}" not in text]
        assert not missing, f"calgate {' '.join(command)}: undocumented {missing}"
