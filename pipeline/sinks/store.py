"""The analyst store as a checkpoint sink."""

from __future__ import annotations

from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.sinks.base import BatchingSink, Record
from pipeline.store.writes import Store


class StoreSink(BatchingSink[EnrichedEvent | DeadLetter]):
    """Enriched events and dead letters, one store transaction per batch."""

    name = "store"
    one_write_per_flush = True

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    def take(self, record: Record) -> EnrichedEvent | DeadLetter | None:
        """Enriched events and dead letters (the redacted ones; raw rows are not for here)."""
        return record if isinstance(record, EnrichedEvent | DeadLetter) else None

    def write(self, batch: list[EnrichedEvent | DeadLetter]) -> None:
        """Write the batch (every partition's records) in one transaction."""
        self._store.write(
            [r for r in batch if isinstance(r, EnrichedEvent)],
            [r for r in batch if isinstance(r, DeadLetter)],
        )
