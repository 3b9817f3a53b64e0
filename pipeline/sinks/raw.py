"""The opt-in raw store as a checkpoint sink: raw text is durable before offsets commit."""

from __future__ import annotations

from pipeline.sinks.base import BatchingSink, Record
from pipeline.store.raw import RawDeadLetter, RawEvent, RawStore


class RawSink(BatchingSink[RawEvent | RawDeadLetter]):
    """The raw rows the run loop hands the checkpoint where redaction changed something."""

    name = "raw_store"
    one_write_per_flush = True

    def __init__(self, store: RawStore) -> None:
        super().__init__()
        self._store = store

    def take(self, record: Record) -> RawEvent | RawDeadLetter | None:
        """Raw rows only: the redacted records go to the other sinks."""
        return record if isinstance(record, RawEvent | RawDeadLetter) else None

    def write(self, batch: list[RawEvent | RawDeadLetter]) -> None:
        """Write the batch (every partition's records) in one transaction."""
        self._store.write(
            [r for r in batch if isinstance(r, RawEvent)],
            [r for r in batch if isinstance(r, RawDeadLetter)],
        )
