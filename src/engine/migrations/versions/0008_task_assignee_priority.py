"""tasks for one person, the case's priority in the inbox, rounds of a limit

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# the inbox indexes before this revision, and after it
INDEXES_0002 = {
    'ix_human_tasks_open_role_due': ['status', 'role', 'due_sort', 'id'],
    'ix_human_tasks_open_role_process_due': ['status', 'role', 'process_id', 'due_sort', 'id'],
    'ix_human_tasks_open_role_category_due': ['status', 'role', 'category', 'due_sort', 'id'],
    'ix_human_tasks_open_role_claimed_due': ['status', 'role', 'claimed_by', 'due_sort', 'id'],
}
INDEXES = {
    'ix_human_tasks_open_role_due': ['status', 'role', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_process_due': ['status', 'role', 'process_id', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_category_due': ['status', 'role', 'category', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_claimed_due': ['status', 'role', 'claimed_by', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_assignee_due': ['status', 'assignee', 'priority', 'due_sort', 'id'],
}


def upgrade():
    # assignee: the user name a task is for when the procedure names a person (a superior two
    # levels up, a unit's head: engine/org.py), not only a role; NULL for a role's task.
    # priority: the case's priority kept in step on its open tasks (like category), P1/P2/P3
    # (1 first, 3 normal), so the inbox can put direct and widespread complaints first; the
    # inbox indexes read it before the due time.
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='3'))
        for name, cols in INDEXES_0002.items():
            batch_op.drop_index(name)
        for name, cols in INDEXES.items():
            batch_op.create_index(name, cols, unique=False)
    # round: how many times a limit was started for its case (a promise renewed each round)
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round', sa.Integer(), nullable=False, server_default='1'))


def downgrade():
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_column('round')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        for name, cols in INDEXES_0002.items():
            batch_op.create_index(name, cols, unique=False)
        batch_op.drop_column('priority')
        batch_op.drop_column('assignee')
