"""The analyst store: enriched events and dead letters in SQLite or PostgreSQL.

``engine`` decides which URLs are accepted and how connections are set up,
``tables`` holds the one ``MetaData`` every table is declared on (``schema`` imports
them all), ``migrate`` and ``migrations`` the Alembic revisions that alone run DDL,
``writes`` the idempotent batch writes, ``reads`` the pandas API analysts and
dashboards use.  May import ``pipeline.schema``
and ``pipeline.errors``; nothing from the run loop, the sinks or Kafka.
"""

from pipeline.store.reads import read_dead_letters, read_events
from pipeline.store.writes import Store, open_store

__all__ = ["Store", "open_store", "read_dead_letters", "read_events"]
