"""read path: the account's mirror generation, each calendar's longest event, and a window
index that covers a read's filters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mirror_generation", sa.Integer(), nullable=False,
                                      server_default="0"))
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_event_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_calendar_window")
        batch_op.create_index("ix_events_calendar_window", ["calendar_id", "deleted", "start_at",
                                                            "end_at", "all_day", "managed_key"])


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_calendar_window")
        batch_op.create_index("ix_events_calendar_window",
                              ["calendar_id", "deleted", "start_at", "end_at"])
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("max_event_seconds")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("mirror_generation")
