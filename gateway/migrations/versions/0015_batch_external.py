"""batch entries that are external event writes: batch_entries.external_id

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_batch_entries_external_id"), ["external_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_batch_entries_external_id_external_writes"),
                                    "external_writes", ["external_id"], ["id"],
                                    ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("batch_entries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_batch_entries_external_id_external_writes"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_batch_entries_external_id"))
        batch_op.drop_column("external_id")
