"""Alembic's environment: migrate the connection :func:`pipeline.store.migrate.upgrade` hands over.

There is no ``alembic.ini`` and no URL here: the caller opens the connection, takes the
schema lock and owns the transaction, so an installed wheel migrates with nothing but
``attnwatch migrate``.  ``target_metadata`` is the one schema, for ``alembic check``
and autogenerate when writing a new revision.
"""

from __future__ import annotations

from alembic import context

from pipeline.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
