"""The Alembic migrations build exactly the schema the table definitions describe, on both
databases, and downgrade cleanly to nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from gateway.persistence.database import migrate
from gateway.persistence.tables import metadata
from oauth_server.tables import metadata as oauth_metadata
from tests.support.db import database


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": False})
            return list(compare_metadata(context, [oauth_metadata, metadata]))  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_migrations_match_the_table_definitions(tmp_path):
    for kind in ("sqlite", "postgresql"):
        with database(kind, tmp_path / kind) as url:
            migrate(url)
            assert _diff(url) == [], kind


def test_downgrade_to_base_and_up_again(tmp_path):
    with database("sqlite", tmp_path) as url:
        migrate(url)
        from alembic import command

        from gateway.persistence.database import alembic_config

        command.downgrade(alembic_config(url), "base")
        engine = create_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        finally:
            engine.dispose()
        migrate(url)
        assert _diff(url) == []
