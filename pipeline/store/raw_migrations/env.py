"""Alembic's environment for the raw store: as ``pipeline/store/migrations/env.py``.

Its own version table (``raw_alembic_version``), so a raw store that shares a database with
the analyst store keeps two histories apart.
"""

from __future__ import annotations

from alembic import context

from pipeline.store.raw import RAW_VERSION_TABLE, raw_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=raw_metadata, version_table=RAW_VERSION_TABLE
)
with context.begin_transaction():
    context.run_migrations()
