"""Alembic's environment and revisions for the opt-in raw store, a database of its own."""
