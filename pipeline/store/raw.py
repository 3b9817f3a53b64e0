"""The opt-in raw store: the unredacted text of events and bytes of dead letters.

Only written when the operator sets ``raw_store_url`` (a separate database with its own
credentials and access rules, e.g. a PostgreSQL schema only the fraud team can read); the
analyst store, the topics and the logs hold redacted content either way.  Rows are keyed
like the analyst store's (``input_id``; a dead letter's source position), so a raw row can
be joined back to its redacted event and deleted with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.errors import StoreError
from pipeline.store.engine import create_engine, insert_ignore, normalise_url, store_errors
from pipeline.store.migrate import upgrade_raw
from pipeline.store.tables import UTCDateTime

#: The raw store's schema: a database of its own, so a ``MetaData`` of its own, migrated by
#: the revisions in ``pipeline/store/raw_migrations`` (:func:`pipeline.store.migrate.upgrade_raw`).
raw_metadata = sa.MetaData()
#: Alembic's version table in the raw store (apart from the analyst store's, should the two
#: share a database).
RAW_VERSION_TABLE = "raw_alembic_version"
raw_events_table = sa.Table(
    "raw_events",
    raw_metadata,
    sa.Column("input_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("event_time", UTCDateTime, nullable=False),
    sa.Index("ix_raw_events_conversation_id", "conversation_id"),
    sa.Index("ix_raw_events_event_time", "event_time"),
)
raw_dead_letters_table = sa.Table(
    "raw_dead_letters",
    raw_metadata,
    sa.Column("source_topic", sa.Text, primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True),
    sa.Column("source_offset", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.LargeBinary),
    sa.Column("received_time", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class RawEvent:
    """One event's raw text."""

    input_id: str
    kind: str
    conversation_id: str | None
    text: str
    event_time: datetime


@dataclass(frozen=True)
class RawDeadLetter:
    """One dead letter's raw value."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    received_time: datetime


class RawStore:
    """Writes raw rows (insert-or-ignore, so a redelivered batch writes nothing twice)."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(normalise_url(url))
        # The run loop and purge open it: upgrade its schema as open_store does the store's.
        try:
            upgrade_raw(self._engine)
        except StoreError:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        """The raw store's engine."""
        return self._engine

    def write(self, events: Sequence[RawEvent], letters: Sequence[RawDeadLetter]) -> None:
        """Write both kinds in one transaction."""
        dialect = self._engine.dialect
        with store_errors("writing raw store"), self._engine.begin() as conn:
            if events:
                conn.execute(
                    insert_ignore(raw_events_table, dialect, ["input_id"]),
                    [e.__dict__ for e in events],
                )
            if letters:
                keys = ["source_topic", "source_partition", "source_offset"]
                conn.execute(
                    insert_ignore(raw_dead_letters_table, dialect, keys),
                    [
                        {
                            "source_topic": d.topic,
                            "source_partition": d.partition,
                            "source_offset": d.offset,
                            "value": d.value,
                            "received_time": d.received_time,
                        }
                        for d in letters
                    ],
                )

    def purge(self, events_before: datetime | None, letters_before: datetime | None) -> int:
        """Delete raw events and dead letters older than the analyst store keeps them."""
        deleted = 0
        with store_errors("purging raw store"), self._engine.begin() as conn:
            if events_before is not None:
                t = raw_events_table
                deleted += conn.execute(sa.delete(t).where(t.c.event_time < events_before)).rowcount
            if letters_before is not None:
                d = raw_dead_letters_table
                deleted += conn.execute(
                    sa.delete(d).where(d.c.received_time < letters_before)
                ).rowcount
        return deleted

    def forget_conversation(self, conversation_id: str) -> int:
        """Delete one conversation's raw texts; the number of rows deleted."""
        t = raw_events_table
        with store_errors("forgetting in raw store"), self._engine.begin() as conn:
            return int(
                conn.execute(sa.delete(t).where(t.c.conversation_id == conversation_id)).rowcount
            )

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()
