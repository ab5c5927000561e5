"""elevated permissions: calendars.permission_level, permission requests, external writes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("permission_level", sa.String(length=16), nullable=False,
                                      server_default="sandbox"))
    op.create_table(
        "permission_requests",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_ids", sa.JSON(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_permission_requests_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_permission_requests")),
    )
    with op.batch_alter_table("permission_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permission_requests_account_id"), ["account_id"],
                              unique=False)
    op.create_table(
        "external_writes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=64), nullable=False),
        sa.Column("event_uid", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("patch", sa.LargeBinary(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_external_writes_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"],
                                name=op.f("fk_external_writes_calendar_id_calendars"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_writes")),
    )
    with op.batch_alter_table("external_writes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_writes_account_id"), ["account_id"],
                              unique=False)
        batch_op.create_index("ux_external_calendar_event", ["calendar_id", "event_uid"],
                              unique=True)
        batch_op.create_index("ix_external_due",
                              ["applied_version", "version", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("external_writes", schema=None) as batch_op:
        batch_op.drop_index("ix_external_due")
        batch_op.drop_index("ux_external_calendar_event")
        batch_op.drop_index(batch_op.f("ix_external_writes_account_id"))
    op.drop_table("external_writes")
    with op.batch_alter_table("permission_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permission_requests_account_id"))
    op.drop_table("permission_requests")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("permission_level")
