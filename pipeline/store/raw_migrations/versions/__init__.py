"""The raw store's Alembic revisions, oldest first: each one is what a release changed."""
