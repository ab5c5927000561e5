"""managed availability: availability rules and available periods (API.md s8.3)

Both belong to an account and go with it (ON DELETE CASCADE), like every row of its.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "availability_rules",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("tzid", sa.String(64), nullable=False),
        sa.Column("calendar_ids", sa.JSON(), nullable=True),
        sa.Column("weekly_periods", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                name="fk_availability_rules_account_id_accounts"),
        sa.PrimaryKeyConstraint("account_id", "rule_id", name="pk_availability_rules"),
    )
    op.create_table(
        "available_periods",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("period_id", sa.String(64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                name="fk_available_periods_account_id_accounts"),
        sa.PrimaryKeyConstraint("account_id", "period_id", name="pk_available_periods"),
    )
    op.create_index("ix_available_periods_account_start", "available_periods",
                    ["account_id", "start_at"])


def downgrade() -> None:
    op.drop_index("ix_available_periods_account_start", table_name="available_periods")
    op.drop_table("available_periods")
    op.drop_table("availability_rules")
