"""Alembic migrations for complaintflow's tables (run by `db.make_engine` on start-up)."""
