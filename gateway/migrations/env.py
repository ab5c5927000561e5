"""Alembic environment: one history for every table, gateway's and oauth_server's."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from gateway.persistence.database import make_engine
from gateway.persistence.tables import metadata as gateway_metadata
from oauth_server.tables import metadata as oauth_metadata

target_metadata = [oauth_metadata, gateway_metadata]
config = context.config


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
