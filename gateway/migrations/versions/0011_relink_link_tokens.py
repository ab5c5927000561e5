"""relinking and link tokens: the link_tokens table, and the profile a consent flow relinks

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                name="fk_link_tokens_account_id_accounts"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_link_tokens"),
    )
    op.create_index("ix_link_tokens_account_id", "link_tokens", ["account_id"])
    with op.batch_alter_table("oauth_consent_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relink_profile_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_consent_transactions", schema=None) as batch_op:
        batch_op.drop_column("relink_profile_id")
    op.drop_index("ix_link_tokens_account_id", table_name="link_tokens")
    op.drop_table("link_tokens")
