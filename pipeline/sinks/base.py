"""The sink interface: what the checkpoint flushes before it commits offsets.

A sink buffers records with ``add()`` and makes them durable with ``flush()``;
the run loop never talks to a sink directly (see :mod:`pipeline.stream.checkpoint`).
"""

from __future__ import annotations

from typing import Protocol

from pipeline.schema import DeadLetter, EnrichedEvent

Record = EnrichedEvent | DeadLetter
#: (topic, partition) -> next offset to read, as Kafka commits it.
Offsets = dict[tuple[str, int], int]


class Sink(Protocol):
    """Somewhere results go: the store, the enriched topic, the dead-letter topic."""

    name: str

    def add(self, record: Record) -> None:
        """Buffer one record (a sink ignores kinds of record it does not take)."""

    def flush(self) -> None:
        """Durably write everything added since the last flush; raise if that fails."""
