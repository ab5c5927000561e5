"""availability: the account owner's own answer to each mirrored invitation, in plaintext

Availability must leave out invitations the owner declined (and may treat tentative answers
as free) without unsealing event text, so the answer gets a column of its own. Rows mirrored
before have none: every calendar's sync cursor is cleared (and its epoch moved on, so a sync
running meanwhile does not save its cursor), and the next sync of each calendar is a full one
that fills the column.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("participation", sa.String(length=16), nullable=True))
    op.execute(sa.text("UPDATE calendars SET cursor = NULL, "
                       "cursor_epoch = cursor_epoch + 1"))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("participation")
