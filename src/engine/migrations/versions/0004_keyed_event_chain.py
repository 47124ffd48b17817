"""keyed event chain: events.key_id

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # From now on each event's hash is an HMAC-SHA256 with the operator's chain key, named
    # here by its fingerprint. Events already stored keep NULL: their unkeyed SHA-256 chain
    # still verifies, and replay reports them as only unkeyed-hashed.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade():
    # Code from before 0004 checks every link as unkeyed SHA-256: events written since then
    # no longer verify there.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('key_id')
