"""inbox: claims, task deadlines, a sort key for due times, access log

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

# the inbox reads each role's open tasks in due order, also within a procedure, a category
# or a claimer
INBOX_INDEXES = {
    "ix_human_tasks_open_role_due": [],
    "ix_human_tasks_open_role_process_due": ["process_id"],
    "ix_human_tasks_open_role_category_due": ["category"],
    "ix_human_tasks_open_role_claimed_due": ["claimed_by"],
}


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
        batch_op.add_column(sa.Column('due_sort', complaintflow.engine.models.UTCDateTime(), nullable=False,
                                      server_default=sa.text("'9999-12-31 00:00:00'")))
        batch_op.add_column(sa.Column('category', sa.String(length=100), nullable=True))
        batch_op.drop_index('ix_human_tasks_open_role_due')
    op.execute("UPDATE human_tasks SET due_sort = due_at WHERE due_at IS NOT NULL")
    op.execute("UPDATE human_tasks SET category = (SELECT category FROM instances WHERE instances.id = human_tasks.instance_id)")
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name, columns in INBOX_INDEXES.items():
            batch_op.create_index(name, ['status', 'role', *columns, 'due_sort', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name in INBOX_INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index('ix_human_tasks_open_role_due', ['status', 'role', 'due_at'], unique=False)
        batch_op.drop_column('category')
        batch_op.drop_column('due_sort')
        batch_op.drop_column('deadline')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_index('ix_access_log_refused')

    op.drop_table('access_log')
