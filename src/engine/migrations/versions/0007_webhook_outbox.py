"""outbound webhooks: the outbox

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # One row per webhook event and receiver, written in the action's transaction and sent
    # after commit (engine/outbox.py); the lease columns let SQLite deliverers take a row.
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('sent_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_event_id'), ['event_id'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_id'))
        batch_op.drop_index('ix_outbox_due')
    op.drop_table('outbox')
