"""Smart Invites: invites per client app, their recipients and callback notifications

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('smart_invites',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('smart_invite_id', sa.String(length=256), nullable=False),
    sa.Column('uid', sa.String(length=255), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('sealed_event', sa.Text(), nullable=False),
    sa.Column('callback_url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smart_invites')),
    sa.UniqueConstraint('uid', name=op.f('uq_smart_invites_uid'))
    )
    with op.batch_alter_table('smart_invites', schema=None) as batch_op:
        batch_op.create_index('ux_smart_invites_client_invite', ['client_id', 'smart_invite_id'], unique=True)

    op.create_table('smart_invite_notifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('public_id', sa.String(length=64), nullable=False),
    sa.Column('invite_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('callback_url', sa.Text(), nullable=False),
    sa.Column('sealed_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invite_id'], ['smart_invites.id'], name=op.f('fk_smart_invite_notifications_invite_id_smart_invites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smart_invite_notifications')),
    sa.UniqueConstraint('public_id', name=op.f('uq_smart_invite_notifications_public_id'))
    )
    with op.batch_alter_table('smart_invite_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smart_invite_notifications_invite_id'), ['invite_id'], unique=False)
        batch_op.create_index('ix_smart_invite_notifications_pending', ['delivered_at', 'next_attempt_at'], unique=False)

    op.create_table('smart_invite_recipients',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('invite_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invite_id'], ['smart_invites.id'], name=op.f('fk_smart_invite_recipients_invite_id_smart_invites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smart_invite_recipients'))
    )
    with op.batch_alter_table('smart_invite_recipients', schema=None) as batch_op:
        batch_op.create_index('ux_smart_invite_recipients_key', ['invite_id', 'email_key'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('smart_invite_recipients', schema=None) as batch_op:
        batch_op.drop_index('ux_smart_invite_recipients_key')

    op.drop_table('smart_invite_recipients')
    with op.batch_alter_table('smart_invite_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_smart_invite_notifications_pending')
        batch_op.drop_index(batch_op.f('ix_smart_invite_notifications_invite_id'))

    op.drop_table('smart_invite_notifications')
    with op.batch_alter_table('smart_invites', schema=None) as batch_op:
        batch_op.drop_index('ux_smart_invites_client_invite')

    op.drop_table('smart_invites')
