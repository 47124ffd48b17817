"""compliance review: searchable case columns, verification results, case facts for statistics

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# the reviewer's search (docs/review.md): each filter reads cases in received order
SEARCH_INDEXES = {
    "ix_instances_case_number": ["case_number"],
    "ix_instances_received": ["received_at"],
    "ix_instances_process_received": ["process_id", "received_at"],
    "ix_instances_category_received": ["category", "received_at"],
    "ix_instances_department_received": ["department", "received_at"],
    "ix_instances_legal_state_received": ["legal_state", "received_at"],
    "ix_instances_breached_received": ["breached", "received_at"],
    "ix_instances_closed": ["closed_at"],
}


def upgrade():
    with op.batch_alter_table('instances', schema=None) as batch_op:
        # the department handling the case (case data `department`), kept in step like category
        batch_op.add_column(sa.Column('department', sa.String(length=100), nullable=True))
        # a declared limit of the case was breached (set with the deadline row's status)
        batch_op.add_column(sa.Column('breached', sa.Boolean(), nullable=False, server_default=sa.false()))
        # working days from receipt to closing, set when the case closes (statistics)
        batch_op.add_column(sa.Column('handling_workdays', sa.Integer(), nullable=True))
        for name, cols in SEARCH_INDEXES.items():
            batch_op.create_index(name, cols, unique=False)

    # the result of each `replay --verify` of a case (the reviewer's badge, bulk checks)
    op.create_table('verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('checked_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('checked_by', sa.String(length=100), nullable=False),
    sa.Column('consistent', sa.Boolean(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('chain_head', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index('ix_verifications_instance', ['instance_id', 'checked_at'], unique=False)
        batch_op.create_index('ix_verifications_failed', ['consistent', 'checked_at'], unique=False)

    # facts a procedure's forms declare for statistics (satisfaction, mediation outcome, ...):
    # one row per case and fact, the latest value, written with the task that recorded it
    op.create_table('case_facts',
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=100), nullable=True),
    sa.Column('positive', sa.Boolean(), nullable=True),
    sa.Column('recorded_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('instance_id', 'name')
    )
    with op.batch_alter_table('case_facts', schema=None) as batch_op:
        batch_op.create_index('ix_case_facts_name', ['name', 'process_id', 'recorded_at'], unique=False)


def downgrade():
    op.drop_table('case_facts')
    op.drop_table('verifications')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        for name in SEARCH_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_column('handling_workdays')
        batch_op.drop_column('breached')
        batch_op.drop_column('department')
