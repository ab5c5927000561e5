"""gateway's own tables: accounts, profiles and the audit log (SQLAlchemy Core).

An account (``acc_…``, the OAuth ``sub``) is one end user of one client app; a profile
(``pro_…``) is one linked upstream calendar account. Upstream credentials are never stored
here: ``credential_path`` points into the secret store.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("email", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("default_tzid", String(64), nullable=False, default="Etc/UTC"),
    # Browser linking: the hashed value of the persistent linking cookie that created it.
    Column("link_key_hash", String(64), nullable=True),
    Column("data_key_wrapped", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_accounts_client_link", "client_id", "link_key_hash"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "account_id",
        String(64),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("provider_name", String(40), nullable=False),
    Column("provider_service", String(40), nullable=False),
    Column("profile_name", Text, nullable=False),
    Column("upstream_id", Text, nullable=False),  # stable id of the upstream account
    Column("credential_path", Text, nullable=True),
    Column("connected", Boolean, nullable=False, default=True),
    Column("initial_sync_required", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("subject", String(80), nullable=True),
    Column("detail", JSON, nullable=True),
)
