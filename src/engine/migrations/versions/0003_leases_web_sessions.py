"""case leases for system work; server-side web sessions

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # A tick (or other system work) leases a case before running its handlers, so that two
    # ticks never run the same case's handlers twice; the lease ends with the action's commit
    # or runs out (a killed worker).
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('lease_until', complaintflow.engine.models.UTCDateTime(), nullable=True))

    # Sign-in sessions kept on the server: the cookie holds a random token, the table its hash;
    # sign-out or a password change ends it here, so a copied cookie stops working.
    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user', sa.String(length=100), nullable=False),
    sa.Column('credential', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('ended_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_web_sessions_user', ['user', 'ended_at'], unique=False)


def downgrade():
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_web_sessions_user')
    op.drop_table('web_sessions')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
