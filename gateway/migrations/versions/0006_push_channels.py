"""provider push channels; sync requests from webhooks; when a profile was disconnected

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_requested_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("disconnected_at", sa.DateTime(timezone=True),
                                      nullable=True))
    op.create_table(
        "push_channels",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=64), nullable=False),
        sa.Column("calendar_id", sa.String(length=64), nullable=False),
        sa.Column("provider_name", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"],
                                name=op.f("fk_push_channels_calendar_id_calendars"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"],
                                name=op.f("fk_push_channels_profile_id_profiles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_channels")),
    )
    with op.batch_alter_table("push_channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_channels_calendar_id"), ["calendar_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_push_channels_profile_id"), ["profile_id"],
                              unique=False)


def downgrade() -> None:
    op.drop_table("push_channels")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("disconnected_at")
        batch_op.drop_column("sync_requested_at")
