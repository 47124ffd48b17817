"""closed cases keep their view and state hash (closed_cases), not their engine state; event
prev_hash stored empty

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    # a closed case's state hash and what the case page shows of it (engine/compaction.py);
    # cases closed before are converted by `complaintflow compact`, not here, so that the
    # upgrade at start-up stays short on a large database (until then they read as before)
    op.create_table(
        'closed_cases',
        sa.Column('instance_id', sa.String(length=36), nullable=False),
        sa.Column('state_hash', sa.LargeBinary(), nullable=False),
        sa.Column('view', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['instances.id']),
        sa.PrimaryKeyConstraint('instance_id'),
    )
    # events.prev_hash: new events store it empty (eventlog.check_chain takes the previous
    # event's hash); older events keep theirs. No change to the column.


def downgrade():
    conn = op.get_bind()
    # the links 0009 reads: each empty prev_hash is the previous event's hash (or the genesis)
    conn.execute(sa.text(
        "UPDATE events SET prev_hash = COALESCE((SELECT e.hash FROM events e WHERE e.instance_id = events.instance_id "
        "AND e.seq = events.seq - 1), :genesis) WHERE length(prev_hash) = 0"), {"genesis": bytes(32)})
    from complaintflow.engine.compaction import restore_states
    restore_states(conn)
    op.drop_table('closed_cases')
