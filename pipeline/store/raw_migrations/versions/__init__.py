"""The raw store's Alembic revisions, oldest first."""
