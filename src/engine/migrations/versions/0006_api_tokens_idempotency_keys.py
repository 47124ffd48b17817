"""integration API: bearer tokens and idempotency keys

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # Integrations call /api/v1 with a bearer token: its name (the actor), roles, and the
    # SHA-256 of its secret; revoked or expired tokens stay listed.
    op.create_table('api_tokens',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name'),
    sa.UniqueConstraint('secret_hash')
    )
    # The first answer to a request with an Idempotency-Key, per token (kept at least 24 h).
    op.create_table('idempotency_keys',
    sa.Column('token_name', sa.String(length=60), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('token_name', 'key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_created')
    op.drop_table('idempotency_keys')
    op.drop_table('api_tokens')
