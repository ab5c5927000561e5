"""Throwaway databases: a SQLite file, or a fresh database on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("CALGATE_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"calgate_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # A throwaway database need not wait for the WAL to reach the disk at each commit
        # (nothing here survives a crash of the PostgreSQL server anyway): on a busy
        # machine those flushes were most of the suite's PostgreSQL time.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(_dsn(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'calgate.db'}"
    else:
        with postgres_database() as url:
            yield url


def truncate_all(url: str) -> None:
    """Empty every table but Alembic's (a fresh database for the next test, in ~20 ms)."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'").fetchall()]
        if names:
            conn.execute("TRUNCATE TABLE " + ", ".join(f'"{n}"' for n in names)
                         + " RESTART IDENTITY CASCADE")
