"""The analyst store as a checkpoint sink."""

from __future__ import annotations

from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.sinks.base import Record
from pipeline.store.writes import Store


class StoreSink:
    """The store as a checkpoint sink: buffers records, writes them in one transaction."""

    name = "store"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: list[EnrichedEvent] = []
        self._dead_letters: list[DeadLetter] = []

    @property
    def pending(self) -> int:
        """Records added since the last successful flush."""
        return len(self._events) + len(self._dead_letters)

    def add(self, record: Record) -> None:
        """Buffer an enriched event or a dead letter."""
        if isinstance(record, EnrichedEvent):
            self._events.append(record)
        elif isinstance(record, DeadLetter):
            self._dead_letters.append(record)

    def flush(self) -> None:
        """Write the buffer in one transaction; keep it if that fails so a retry loses nothing."""
        if not self.pending:
            return
        self._store.write(self._events, self._dead_letters)
        self._events = []
        self._dead_letters = []
