"""an application calendar's account is unique per client app and name: accounts.owned_key

Revision ID: 0014
Revises: 0013
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owned_key", sa.String(64), nullable=True))
    # Existing application calendars ("apc_" accounts, one profile each) get their profile's
    # upstream_id. Where simultaneous first calls already made several, the oldest keeps
    # the name (later calls find it, as the lookup by name did); the others keep working for
    # the tokens issued to them and are erased like any account.
    op.execute(sa.text("""
        UPDATE accounts SET owned_key = (
            SELECT min(p.upstream_id) FROM profiles p WHERE p.account_id = accounts.id)
        WHERE substr(accounts.id, 1, 4) = 'apc_'
          AND NOT EXISTS (
            SELECT 1 FROM accounts older
              JOIN profiles theirs ON theirs.account_id = older.id
              JOIN profiles mine ON mine.account_id = accounts.id
            WHERE substr(older.id, 1, 4) = 'apc_'
              AND older.client_id = accounts.client_id
              AND theirs.provider_name = mine.provider_name
              AND theirs.upstream_id = mine.upstream_id
              AND (older.created_at < accounts.created_at
                   OR (older.created_at = accounts.created_at AND older.id < accounts.id)))
    """))
    op.create_index("ux_accounts_client_owned", "accounts", ["client_id", "owned_key"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_accounts_client_owned", table_name="accounts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("owned_key")
