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


def test_existing_application_calendars_get_their_key(tmp_path):
    """0014 keys the application calendars made before it; where simultaneous first calls
    had made two for one name, the older keeps the name and the index can be built."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from gateway.persistence.tables import accounts, profiles

    then = datetime(2026, 1, 1, tzinfo=UTC)
    made = [("apc_old", "app", "k1", then), ("apc_new", "app", "k1", then + timedelta(1)),
            ("apc_other", "app", "k2", then), ("acc_linked", "app", "k1", then)]
    for kind in ("sqlite", "postgresql"):
        with database(kind, tmp_path / kind) as url:
            migrate(url, "0013")
            engine = create_engine(url)
            try:
                with engine.begin() as conn:
                    for subject, client_id, key, at in made:
                        conn.execute(insert(accounts).values(
                            id=subject, client_id=client_id, default_tzid="Etc/UTC", scope="",
                            mirror_generation=0, created_at=at))
                        conn.execute(insert(profiles).values(
                            id=f"pro_{subject}", account_id=subject, provider_name="cronofy",
                            provider_service="cronofy", profile_name="x", upstream_id=key,
                            connected=True, initial_sync_required=False, created_at=at,
                            sync_failures=0))
                migrate(url)
                with engine.connect() as conn:
                    keys = dict(conn.execute(select(accounts.c.id, accounts.c.owned_key)).all())
            finally:
                engine.dispose()
            assert keys == {"apc_old": "k1", "apc_new": None, "apc_other": "k2",
                            "acc_linked": None}, kind
