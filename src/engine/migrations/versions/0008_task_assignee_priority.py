"""tasks for one person, and the case's priority in the inbox

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # assignee: the user name a task is for when the procedure names a person (a superior two
    # levels up, a unit's head: engine/org.py), not only a role; NULL for a role's task.
    # priority: the case's priority kept in step on its open tasks (like category), so the
    # inbox can put direct and widespread complaints first.
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_human_tasks_open_assignee_due', ['status', 'assignee', 'due_sort', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_open_assignee_due')
        batch_op.drop_column('priority')
        batch_op.drop_column('assignee')
