"""DB-API plumbing for the refresh grant's hot path (bench/HOTSPOTS.md): statements compiled
once per dialect, and SQLite WAL checkpoints kept off the token lane."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ClauseElement, Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.sql.compiler import SQLCompiler

log = logging.getLogger("calgate.oauth")


class Prepared:
    """A Core statement compiled once for one dialect, run straight on a DB-API connection.

    The refresh grant runs five statements per request (find, rotate, insert the pair,
    delete the family's superseded rows, commit); through a ``Connection``,
    SQLAlchemy's per-execution work (cache key, execution context, result objects) cost
    several times what SQLite itself does (bench/HOTSPOTS.md). Values still pass through
    the dialect's own type processors, so rows are stored and read exactly as Core does
    (SQLite keeps datetimes as ISO strings).
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for bind, name in compiled.bind_names.items()}
        self._named = compiled.positiontup is None  # e.g. psycopg's %(name)s
        order = dict.fromkeys(processors) if self._named else compiled.positiontup or ()
        # (name, literal value such as kind = 'refresh', type processor) per placeholder
        self._plan = tuple((name, compiled.params.get(name), processors[name])
                           for name in order)
        columns = getattr(statement, "selected_columns", ())
        self._columns = tuple((c.key, c.type.dialect_impl(dialect).result_processor(dialect, None))
                              for c in columns)

    def params(self, values: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        """``values`` (by bind name) as the driver takes them."""
        get = values.get
        out = [get(name, literal) if process is None else process(get(name, literal))
               for name, literal, process in self._plan]
        return dict(zip((p[0] for p in self._plan), out, strict=True)) if self._named else out

    def run(self, conn: DBAPIConnection, values: Mapping[str, Any]) -> int:
        """Execute; the row count."""
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self.params(values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, conn: DBAPIConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        cursor = conn.cursor()
        try:
            batch: list[Any] = [self.params(r) for r in rows]
            cursor.executemany(self.sql, batch)
        finally:
            cursor.close()

    def one(self, conn: DBAPIConnection, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row, by column key, or None."""
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, self.params(values))
            raw = cursor.fetchone()
        finally:
            cursor.close()
        if raw is None:
            return None
        return {name: value if process is None else process(value)
                for (name, process), value in zip(self._columns, raw, strict=True)}


class Checkpointer:
    """Checkpoints SQLite's WAL in a thread of its own, never inside a batch's commit.

    SQLite checkpoints in the commit that takes the WAL past 1000 pages: at a couple of
    thousand refreshes a second, every eighth batch, stalling every token request for
    15-20 ms (the copy into the database file and its fsync; bench/HOTSPOTS.md). A batch
    turns that off on its own connection and has this thread checkpoint instead; every
    other connection keeps SQLite's default.
    """

    def __init__(self, engine: Engine, pause: float = 0.05, idle: float = 5.0) -> None:
        self._engine = engine
        self._pause = pause  # at most one checkpoint per pause: each costs two fsyncs
        self._idle = idle  # the thread stops after this long without batches
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running = False

    @contextmanager
    def deferred(self, conn: DBAPIConnection) -> Iterator[None]:
        """``conn`` does not checkpoint until the block ends; this thread does, after it."""
        previous = _pragma(conn, "wal_autocheckpoint")
        _pragma(conn, "wal_autocheckpoint=0")
        try:
            yield
        finally:
            _pragma(conn, f"wal_autocheckpoint={int(previous)}")
            self._poke()

    def _poke(self) -> None:
        self._wake.set()
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="calgate-wal-checkpoints",
                                 daemon=True).start()

    def _run(self) -> None:
        while self._wake.wait(self._idle) or not self._stopped():
            self._wake.clear()
            try:
                conn = self._engine.raw_connection()
                try:
                    # PASSIVE: copies what no reader still needs, and blocks no writer.
                    _pragma(conn, "wal_checkpoint(PASSIVE)")
                finally:
                    conn.close()
            except Exception:  # the next batch pokes again; SQLite's own limit still holds
                log.warning("WAL checkpoint failed", exc_info=True)
            time.sleep(self._pause)

    def _stopped(self) -> bool:
        """Idle: stop, unless a poke came in meanwhile (checked under the poke's lock)."""
        with self._lock:
            self._running = self._wake.is_set()
            return not self._running


def _pragma(conn: DBAPIConnection, statement: str) -> Any:
    cursor = conn.cursor()
    try:
        cursor.execute(f"PRAGMA {statement}")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else row[0]
