"""A running test server's database, read from the test: state to wait on (a profile's row,
its push channels), never a substitute for asking the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, select

from gateway.persistence.tables import profiles, push_channels


@contextmanager
def server_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the server's database, disposed when the test is done with it."""
    made = create_engine(database_url)
    try:
        yield made
    finally:
        made.dispose()


def profile_row(engine: Engine, email: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(profiles).where(profiles.c.profile_name == email)).one()


def channels_in(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(push_channels)).all())


def utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC one (SQLite gives it back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
