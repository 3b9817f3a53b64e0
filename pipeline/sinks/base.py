"""The sink interface the checkpoint flushes, and the batching base class sinks share.

A sink takes records with ``add()`` and makes them durable with ``flush()``; the run loop
never talks to a sink directly (see :mod:`pipeline.stream.checkpoint`).  As in Quix Streams'
``BatchingSink``, :class:`BatchingSink` owns the per-partition batches: a sink says which
records it takes (:meth:`BatchingSink.take`) and how to write one batch
(:meth:`BatchingSink.write`); keeping a batch that failed for the next flush is the base
class's job, so no sink re-implements buffer, flush and clear.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, Protocol, TypeVar

from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.store.raw import RawDeadLetter, RawEvent

#: What the run loop hands the checkpoint: redacted results, and (only where redaction
#: changed something) the raw rows for the opt-in raw store.  A sink ignores kinds it does
#: not take, so raw text goes nowhere but a sink that asks for it.
Record = EnrichedEvent | DeadLetter | RawEvent | RawDeadLetter
Item = TypeVar("Item")


class Sink(Protocol):
    """Somewhere results go: the store, the raw store, the enriched and dead-letter topics."""

    name: str

    @property
    def pending(self) -> int:
        """Records added since the last successful flush."""

    def add(self, record: Record, topic: str = "", partition: int = 0) -> None:
        """Take one record from input ``(topic, partition)``; ignore kinds not taken."""

    def flush(self) -> None:
        """Durably write everything added since the last flush; raise if that fails."""


class BatchingSink(ABC, Generic[Item]):
    """Per-partition batches of the records a sink takes; a batch goes once written."""

    name: str
    #: Write every partition's batch in one ``write`` (one transaction): for the stores,
    #: where a transaction per partition made a flush of 32 records over 4 partitions take
    #: 1.95x as long on SQLite (decision 0015).
    one_write_per_flush: ClassVar[bool] = False

    def __init__(self) -> None:
        self._batches: dict[tuple[str, int], list[Item]] = {}

    @property
    def pending(self) -> int:
        """Records added since the last successful flush."""
        return sum(len(batch) for batch in self._batches.values())

    def add(self, record: Record, topic: str = "", partition: int = 0) -> None:
        """Batch ``record`` under its input partition if this sink takes it."""
        self._batch(record, topic, partition)

    def _batch(self, record: Record, topic: str, partition: int) -> Item | None:
        """Batch ``record`` if taken; the item batched, or None."""
        item = self.take(record)
        if item is not None:
            self._batches.setdefault((topic, partition), []).append(item)
        return item

    def flush(self) -> None:
        """Write every batch; one that fails is kept (with those after it) and re-raised."""
        if self.one_write_per_flush and self._batches:
            self.write([item for batch in self._batches.values() for item in batch])
            self._batches.clear()
            return
        for key in list(self._batches):
            self.write(self._batches[key])
            del self._batches[key]

    @abstractmethod
    def take(self, record: Record) -> Item | None:
        """What this sink keeps of ``record``; ``None`` for kinds it does not take."""

    @abstractmethod
    def write(self, batch: list[Item]) -> None:
        """Durably write one partition's batch; raise (and write again later) if that fails."""
