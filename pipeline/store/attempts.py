"""How often each input record was started without finishing: the redelivery limit's memory.

A message that crashes the process (a segfault in a tokenizer, an out-of-memory
kill) comes back after every restart, because its offset was never committed.
Counting attempts in memory cannot catch that, so the count lives in the store,
durable before the model sees the record (against a process crash: the commit is not
synced to disk, see :func:`~pipeline.store.engine.unsynced`, so a power cut can give a
poison message one more try): the run loop calls :meth:`start` before classifying and
:meth:`finish` once the batch's results are durably written.  A record whose count
reaches the limit is dead-lettered instead of classified again.

The table is part of the one store schema (:mod:`pipeline.store.schema`), created and
migrated by ``attnwatch migrate``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.store.engine import store_errors, unsynced
from pipeline.store.tables import UTCDateTime, metadata

#: (topic, partition, offset) of an input record.
Position = tuple[str, int, int]

attempts_table = sa.Table(
    "attempts",
    metadata,
    sa.Column("source_topic", sa.Text, primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True),
    sa.Column("source_offset", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("updated_time", UTCDateTime, nullable=False),
)


class AttemptLog:
    """Durable per-record attempt counts in the analyst store's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self, positions: Iterable[Position]) -> dict[Position, int]:
        """Earlier unfinished starts of these records; count this start for the new ones.

        One transaction: records never started before get a count of 1 and are left out
        of the result (the common case: an empty dict); records with a count come back
        with it, *not* incremented, so the caller can retry them one at a time with
        :meth:`start_one` and only the record that really kills the process accumulates.
        """
        keys = sorted(set(positions))
        if not keys:
            return {}
        table = attempts_table
        now = datetime.now(UTC)
        with store_errors("attempt counts"), unsynced(self._engine) as conn:
            found = conn.execute(
                sa.select(
                    table.c.source_topic,
                    table.c.source_partition,
                    table.c.source_offset,
                    table.c.count,
                ).where(_in(keys))
            ).all()
            earlier = {(t, int(p), int(o)): int(c) for t, p, o, c in found}
            fresh = [
                {
                    "source_topic": t,
                    "source_partition": p,
                    "source_offset": o,
                    "count": 1,
                    "updated_time": now,
                }
                for t, p, o in keys
                if (t, p, o) not in earlier
            ]
            if fresh:
                conn.execute(sa.insert(table), fresh)
        return earlier

    def start_one(self, position: Position) -> None:
        """Count one more start of a record that :meth:`begin` reported as started before."""
        table = attempts_table
        with store_errors("attempt counts"), unsynced(self._engine) as conn:
            conn.execute(
                sa.update(table)
                .where(_in([position]))
                .values(count=table.c.count + 1, updated_time=datetime.now(UTC))
            )

    def finish(self, positions: Iterable[Position]) -> None:
        """Forget the records of a committed batch."""
        keys = sorted(set(positions))
        if not keys:
            return
        with store_errors("attempt counts"), unsynced(self._engine) as conn:
            conn.execute(sa.delete(attempts_table).where(_in(keys)))

    def counts(self) -> dict[Position, int]:
        """Every open count (for tests and operators)."""
        table = attempts_table
        with self._engine.connect() as conn:
            found = conn.execute(
                sa.select(
                    table.c.source_topic,
                    table.c.source_partition,
                    table.c.source_offset,
                    table.c.count,
                )
            ).all()
        return {(t, int(p), int(o)): int(c) for t, p, o, c in found}


def _in(keys: list[Position]) -> sa.ColumnElement[bool]:
    table = attempts_table
    return sa.tuple_(table.c.source_topic, table.c.source_partition, table.c.source_offset).in_(
        keys
    )
