"""initial schema

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
import complaintflow.engine.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_counters',
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('process_id', 'year')
    )
    op.create_table('process_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('source_path', sa.String(length=500), nullable=False),
    sa.Column('bpmn_xml', sa.Text(), nullable=False),
    sa.Column('forms', sa.JSON(), nullable=False),
    sa.Column('specs', sa.JSON(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('deployed_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('process_id', 'content_hash'),
    sa.UniqueConstraint('process_id', 'version')
    )
    with op.batch_alter_table('process_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_versions_process_id'), ['process_id'], unique=False)

    op.create_table('instances',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('case_number', sa.String(length=50), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('received_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('closed_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('next_due_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('legal_state', sa.String(length=50), nullable=True),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('last_event_seq', sa.Integer(), nullable=False),
    sa.Column('last_event_hash', sa.String(length=64), nullable=False),
    sa.Column('step_count', sa.Integer(), nullable=False),
    sa.Column('id_counter', sa.Integer(), nullable=False),
    sa.Column('row_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['process_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('process_id', 'case_number')
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instances_category'), ['category'], unique=False)
        batch_op.create_index('ix_instances_next_due', ['next_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_process_id'), ['process_id'], unique=False)
        batch_op.create_index('ix_instances_status_received', ['status', 'received_at'], unique=False)

    op.create_table('deadlines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rule', sa.Text(), nullable=True),
    sa.Column('seed', sa.String(length=200), nullable=True),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('start_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('due_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('last_day', sa.String(length=10), nullable=True),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('paused_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('paused_days', sa.Integer(), nullable=False),
    sa.Column('paused_seconds', sa.Integer(), nullable=False),
    sa.Column('extended_by', sa.Integer(), nullable=False),
    sa.Column('remind_workdays', sa.Integer(), nullable=True),
    sa.Column('breached_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('completed_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id', 'name')
    )
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.create_index('ix_deadlines_breached', ['process_id', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_deadlines_open', ['status', 'provisional'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('task_id', sa.String(length=36), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state_after', sa.String(length=64), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id', 'seq')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_instance_id'), ['instance_id'], unique=False)

    op.create_table('human_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('process_id', sa.String(length=100), nullable=False),
    sa.Column('task_spec', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=100), nullable=True),
    sa.Column('form', sa.String(length=300), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('due_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('completed_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.Column('completed_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_instance', ['instance_id', 'status'], unique=False)
        batch_op.create_index('ix_human_tasks_open_role_due', ['status', 'role', 'due_at'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('task_spec', sa.String(length=100), nullable=False),
    sa.Column('handler', sa.String(length=100), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', complaintflow.engine.models.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', complaintflow.engine.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_open', ['instance_id', 'resolved_at'], unique=False)

    op.create_table('instance_states',
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ),
    sa.PrimaryKeyConstraint('instance_id')
    )


def downgrade():
    op.drop_table('instance_states')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_open')

    op.drop_table('incidents')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_open_role_due')
        batch_op.drop_index('ix_human_tasks_instance')

    op.drop_table('human_tasks')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_instance_id'))

    op.drop_table('events')
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_index('ix_deadlines_open')
        batch_op.drop_index('ix_deadlines_breached')

    op.drop_table('deadlines')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index('ix_instances_status_received')
        batch_op.drop_index(batch_op.f('ix_instances_process_id'))
        batch_op.drop_index('ix_instances_next_due')
        batch_op.drop_index(batch_op.f('ix_instances_category'))

    op.drop_table('instances')
    with op.batch_alter_table('process_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_versions_process_id'))

    op.drop_table('process_versions')
    op.drop_table('case_counters')
