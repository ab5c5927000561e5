"""The shape the provider sync benchmarks share (bench/run_google_bench.py,
run_microsoft_bench.py and run_exchange_bench.py): Calgate opened on a data dir with a
profile linked as the consent step would; a measuring child process that syncs that profile
through the real ``SyncEngine.sync_profile``, as the worker runs it, so the CPU time and peak
memory belong to the sync alone; the runner's handle on that child; and the machine.

The child is this script itself (``python bench/sync_bench.py '<json job>'``, importing the
job's ``preload`` modules, what the provider's sync imports, before the first measurement)
or a bench's own script calling :func:`serve` with extra ops. It answers one JSON line per
command on stdin (``{"op": "sync"}``, ``{"op":
"sync", "trace": true}``, a bench's own ops, ``{"op": "quit"}``) with a line after
:data:`MARKER`. Each sync reports wall time, CPU time (``time.process_time``), peak RSS
(``VmHWM`` after resetting it), RSS before, the tracemalloc peak when traced, the mirror
rows changed and the live events in the mirror. The runner counts the upstream requests
in its emulator between its command and the answer, and makes the owner's changes between
syncs, so a bench whose emulator has only a Python control API drives it in its own
process.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_common import (  # noqa: E402
    MARKER,
    PYTHON,
    code_digest,
    cpu_and_memory,
    log,
    proc_status,
    reset_peak,
)

# What a client app's grant asks for in every sync bench (Calgate's read_write).
SCOPES = ["read_account", "list_calendars", "read_events", "read_free_busy",
          "create_event", "delete_event"]
Op = Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]]


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def open_gateway(env: dict[str, str], migrate_first: bool = False) -> Any:
    from gateway.app import Gateway
    from gateway.persistence.database import migrate
    from gateway.settings import Settings

    settings = Settings.from_env(env)
    if migrate_first:
        migrate(settings.effective_database_url)
    return Gateway.build(settings)


def link(gateway: Any, provider: str, email: str, upstream_id: str,
         credentials: Mapping[str, str], app_name: str) -> Any:
    """A client app and a profile linked as the consent step would (park + link)."""
    from gateway.services.accounts import PendingAccount

    client, _secret = gateway.oauth.registry.create(
        name=app_name, redirect_uris=["https://bench.example/cb"], scopes=["read_write"])
    parked = gateway.accounts.park_credentials(uuid.uuid4().hex, dict(credentials))
    return gateway.accounts.link(str(client.client_id), PendingAccount(
        provider, provider, email, upstream_id, parked), None, SCOPES)


def describe(names: Iterable[str]) -> str:
    """``GetFolder x2, SyncFolderItems`` in the order first seen."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counts.items())


# -- the child's side ------------------------------------------------------------------


def sync(gateway: Any, profile_id: str) -> Any:
    """One ``SyncEngine.sync_profile`` of a profile made due now."""
    import anyio
    from sqlalchemy import update

    from gateway.persistence.tables import profiles

    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(next_sync_at=today()))
    outcome = anyio.run(gateway.worker.sync.sync_profile, profile_id)
    if not outcome.ran or outcome.error is not None:
        raise RuntimeError(f"sync of {profile_id} failed: {outcome}")
    return outcome


def mirror_events(gateway: Any, profile_id: str) -> int:
    from sqlalchemy import func, select

    from gateway.persistence.tables import calendars, events

    with gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events).join(
            calendars, calendars.c.id == events.c.calendar_id).where(
            calendars.c.profile_id == profile_id, events.c.deleted.is_(False))).scalar_one())


def measured(gateway: Any, profile_id: str, trace: bool) -> dict[str, Any]:
    """One sync with its wall and CPU time, peak RSS and (traced) Python allocations."""
    rss0 = proc_status("VmRSS")
    reset = reset_peak()
    if trace:
        tracemalloc.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = sync(gateway, profile_id)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    return {"wall_s": wall, "cpu_s": cpu, "changed": outcome.changed, "rss_before_kb": rss0,
            "hwm_kb": proc_status("VmHWM"), "hwm_reset": reset, "tracemalloc_peak_b": traced,
            "mirror_events": mirror_events(gateway, profile_id)}


def serve(job: dict[str, Any], ops: Mapping[str, Op] | None = None) -> None:
    """The child's loop: open the gateway (before any measurement: what is measured is the
    sync, not this process starting up), then answer commands until ``quit``."""
    import anyio  # noqa: F401  (imported before the first measurement)

    gateway = open_gateway(job["env"])
    gateway.worker.sync.keys.key(job["subject"])
    print(MARKER + json.dumps({"pid": os.getpid()}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                break
            if command["op"] == "sync":
                result = measured(gateway, job["profile_id"], bool(command.get("trace")))
            else:
                result = (ops or {})[command["op"]](gateway, job, command)
            print(MARKER + json.dumps(result), flush=True)
    finally:
        gateway.close()


def main(job: dict[str, Any]) -> None:
    for module in job.get("preload", ()):
        importlib.import_module(module)
    serve(job)


# -- the runner's side -----------------------------------------------------------------


class Child:
    """A bench's measuring script in a process (and session) of its own, answering one
    command at a time; killed by its PID on timeout or when the runner fails."""

    def __init__(self, script: str, job: dict[str, Any], timeout: float) -> None:
        self.script, self.timeout = script, timeout
        self.proc = subprocess.Popen(
            [str(PYTHON), str(BENCH / script), json.dumps(job)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout,)),
                        threading.Thread(target=self._drain, args=(self.proc.stderr,))]
        for reader in self.readers:
            reader.daemon = True
            reader.start()
        self.pid = self.answer()["pid"]

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.lines.put(line)
        self.lines.put(None)

    def _drain(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.errors.append(line)

    def answer(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(
                    f"{self.script} gave no answer in {self.timeout} s") from None
            if line is None:
                raise RuntimeError(f"{self.script} exited: {''.join(self.errors)[-3000:]}")
            if line.startswith(MARKER):
                found: dict[str, Any] = json.loads(line.removeprefix(MARKER))
                return found

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()  # Popen.kill: SIGKILL to this child's own PID
            self.proc.wait()
        for reader in self.readers:  # at the child's end of output, then close our ends
            reader.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):  # a killed child's stdin: a broken pipe
                    stream.close()


def counted(child: Child, command: dict[str, Any],
            requests: Callable[[], list[str]]) -> dict[str, Any]:
    """One command in the child, with the upstream requests made meanwhile: ``requests``
    lists the emulator's requests so far, by kind."""
    offset = len(requests())
    result = child.ask(command)
    made = requests()[offset:]
    return {**result, "requests": len(made), "request_list": describe(made)}


@contextlib.contextmanager
def opened(env: dict[str, str], profile: Any, preload: list[str], timeout: float
           ) -> Iterator[Child]:
    """This script as the measuring child of ``profile`` (a linked profile), closed after."""
    child = Child("sync_bench.py", {"env": env, "profile_id": profile.profile_id,
                                    "subject": profile.subject, "preload": preload}, timeout)
    try:
        yield child
    finally:
        child.close()


def initial_and_rounds(env: dict[str, str], linked: list[Any], preload: list[str],
                       timeout: float, counted: Callable[[Child, dict[str, Any]], Any],
                       rounds: Callable[[Child], list[dict[str, Any]]]) -> dict[str, Any]:
    """What a provider bench measures: the first profile's initial sync and the bench's
    incremental ``rounds`` in one child, then the second profile's initial sync under
    tracemalloc in a fresh child. ``counted`` runs one command, counting the upstream
    requests it cost."""
    out: dict[str, Any] = {}
    log("initial sync + incremental rounds (child 1)")
    with opened(env, linked[0], preload, timeout) as child:
        out["initial"] = counted(child, {"op": "sync"})
        out["incremental"] = rounds(child)
    log("initial sync under tracemalloc (child 2)")
    with opened(env, linked[1], preload, timeout) as traced:
        out["traced"] = counted(traced, {"op": "sync", "trace": True})
    return out


def other_benchmarks() -> list[str]:
    """Other benchmark runners on this machine (the reports say so)."""
    found = subprocess.run(["pgrep", "-af", "run_.*bench"], capture_output=True, text=True)
    mine = {str(os.getpid()), str(os.getppid())}  # this runner (and a `timeout` around it)
    return [x for x in found.stdout.splitlines() if x.split()[0] not in mine]


def machine(libraries: Iterable[str]) -> dict[str, str]:
    """The machine, the database and client library versions, the code measured, now."""
    from importlib.metadata import version

    import sqlalchemy

    return {**cpu_and_memory(),
            "SQLAlchemy": sqlalchemy.__version__,
            "SQLite": __import__("sqlite3").sqlite_version,
            **{name: version(name) for name in libraries},
            "code measured": "sha256 of gateway/ + oauth_server/ + providers/ sources: "
                             + code_digest(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
