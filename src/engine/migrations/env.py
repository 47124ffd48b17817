"""Alembic environment: complaintflow passes its own connection (engine/db.py)."""

from alembic import context

from complaintflow.engine.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
