"""inbox: claims, task deadlines, access log

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('access_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('user', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=100), nullable=True),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.create_index('ix_access_log_refused', ['allowed', 'at'], unique=False)

    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', complaintflow.engine.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('deadline', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_human_tasks_open_process_due', ['status', 'process_id', 'due_at'], unique=False)



def downgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_open_process_due')
        batch_op.drop_column('deadline')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_index('ix_access_log_refused')

    op.drop_table('access_log')
