"""Alembic's environment and revisions for the store (run by :mod:`pipeline.store.migrate`)."""
