"""closed cases kept small: packed engine state, inbox indexes of open tasks only, event
hashes as bytes, three redundant indexes dropped

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# the inbox indexes as 0008 made them; from here on they hold open tasks only
INDEXES = {
    'ix_human_tasks_open_role_due': ['status', 'role', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_process_due': ['status', 'role', 'process_id', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_category_due': ['status', 'role', 'category', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_role_claimed_due': ['status', 'role', 'claimed_by', 'priority', 'due_sort', 'id'],
    'ix_human_tasks_open_assignee_due': ['status', 'assignee', 'priority', 'due_sort', 'id'],
}
OPEN = "status = 'open'"
# each served as well by a composite index that begins with the same column
REDUNDANT = {'ix_events_instance_id': ('events', ['instance_id']),       # unique (instance_id, seq)
             'ix_instances_process_id': ('instances', ['process_id']),   # (process_id, received_at)
             'ix_instances_category': ('instances', ['category'])}       # (category, received_at)
HASHES = ('prev_hash', 'hash', 'state_after')


def upgrade():
    # packed: a closed case's engine state, zlib-compressed (engine/compaction.py); `state`
    # is then ''. Existing closed cases are packed by `complaintflow compact`, not here, so
    # that the upgrade at start-up stays short on a large database.
    with op.batch_alter_table('instance_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('packed', sa.LargeBinary(), nullable=True))
    # every inbox query reads open tasks (status = 'open'): completed and cancelled tasks,
    # most rows of a store, no longer take room in the five inbox indexes
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name, cols in INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, cols, unique=False, sqlite_where=sa.text(OPEN),
                                  postgresql_where=sa.text(OPEN))
    for name, (table, cols) in REDUNDANT.items():
        op.drop_index(name, table_name=table)
    # the events' hashes as their 32 bytes (models.HashBytes). PostgreSQL converts the column;
    # SQLite stores the bytes of new events in the column as it is declared and reads the hex
    # text of older ones, so its events table is not rewritten.
    if op.get_bind().dialect.name == 'postgresql':
        for col in HASHES:
            op.alter_column('events', col, type_=sa.LargeBinary(), existing_type=sa.String(length=64),
                            postgresql_using=f"decode({col}, 'hex')")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for col in HASHES:
            op.alter_column('events', col, type_=sa.String(length=64), existing_type=sa.LargeBinary(),
                            postgresql_using=f"encode({col}, 'hex')")
    else:
        for col in HASHES:
            op.execute(f"UPDATE events SET {col} = lower(hex({col})) WHERE typeof({col}) = 'blob'")
    for name, (table, cols) in REDUNDANT.items():
        op.create_index(name, table, cols, unique=False)
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        for name, cols in INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, cols, unique=False)
    # a packed state is unpacked before the column goes
    from complaintflow.engine.compaction import unpack
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT instance_id, packed FROM instance_states WHERE packed IS NOT NULL")).all()
    for iid, packed in rows:
        conn.execute(sa.text("UPDATE instance_states SET state = :s WHERE instance_id = :i"),
                     {"s": unpack(bytes(packed), iid), "i": iid})
    with op.batch_alter_table('instance_states', schema=None) as batch_op:
        batch_op.drop_column('packed')
