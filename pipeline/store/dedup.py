"""What of a batch is already in the store: so a redelivered batch is not produced twice.

The checkpoint flushes the topics before the store (see ``attnwatch.service``), so a
row in the store means its topic record was acknowledged too.  When a batch comes back
after a crash between the store commit and the offset commit, the records already stored
are skipped (not classified, not re-sent): the topics stay free of those duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.store.engine import store_errors
from pipeline.store.tables import dead_letters_table, events_table

#: (topic, partition, offset) of an input record.
Position = tuple[str, int, int]


def stored_input_ids(engine: Engine, input_ids: Iterable[str]) -> set[str]:
    """The ids among ``input_ids`` that have an ``events`` row."""
    ids = sorted(set(input_ids))
    if not ids:
        return set()
    table = events_table
    with store_errors("looking up stored events"), engine.connect() as conn:
        found = conn.execute(sa.select(table.c.input_id).where(table.c.input_id.in_(ids)))
        return {row[0] for row in found}


def stored_dead_letters(engine: Engine, positions: Iterable[Position]) -> set[Position]:
    """The source positions among ``positions`` that have a ``dead_letters`` row."""
    keys = sorted(set(positions))
    if not keys:
        return set()
    table = dead_letters_table
    key = sa.tuple_(table.c.source_topic, table.c.source_partition, table.c.source_offset)
    with store_errors("looking up stored dead letters"), engine.connect() as conn:
        found = conn.execute(
            sa.select(table.c.source_topic, table.c.source_partition, table.c.source_offset)
            .where(key.in_(keys))
        )
        return {(t, int(p), int(o)) for t, p, o in found}


class StoredLookup:
    """Both lookups over one engine, for the run loop."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def stored(
        self, input_ids: Iterable[str], positions: Iterable[Position]
    ) -> tuple[set[str], set[Position]]:
        """(stored input ids, stored dead-letter positions)."""
        return stored_input_ids(self._engine, input_ids), stored_dead_letters(
            self._engine, positions
        )
