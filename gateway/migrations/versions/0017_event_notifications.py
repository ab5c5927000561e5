"""per-event subscriptions: conferencing_assigned notifications share the Smart Invite queue

A notification row now says its ``type``; a ``conferencing_assigned`` one belongs to the
managed event it is about (gone with it, and so with the account) instead of an invite, and
carries a ``dedup_key`` so one (event, uri, interaction, join URL) is queued only once.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TABLE = "smart_invite_notifications"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.alter_column("invite_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("type", sa.String(length=40), nullable=False,
                                      server_default="smart_invite"))
        batch_op.add_column(sa.Column("managed_event_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dedup_key", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_smart_invite_notifications_managed_event_id_managed_events"),
            "managed_events", ["managed_event_id"], ["id"], ondelete="CASCADE")
        batch_op.create_index(
            batch_op.f("ix_smart_invite_notifications_managed_event_id"),
            ["managed_event_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_smart_invite_notifications_dedup_key"), ["dedup_key"])


def downgrade() -> None:
    op.execute(sa.text(f"DELETE FROM {_TABLE} WHERE invite_id IS NULL"))
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_smart_invite_notifications_dedup_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_smart_invite_notifications_managed_event_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_smart_invite_notifications_managed_event_id_managed_events"),
            type_="foreignkey")
        batch_op.drop_column("dedup_key")
        batch_op.drop_column("managed_event_id")
        batch_op.drop_column("type")
        batch_op.alter_column("invite_id", existing_type=sa.Integer(), nullable=False)
