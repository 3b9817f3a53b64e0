"""The commit protocol: a batch is done only when every sink has durably flushed it.

Modelled on Quix Streams' checkpoint: sinks accept records with ``add()``, the
checkpoint calls every sink's ``flush()``, and only if all flushes succeed are
the source offsets committed.  A crash between flush and commit means the batch
is redelivered; sinks are keyed by input id (store) or tolerate duplicates
(topics), so redelivery never creates duplicate rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.sinks.base import Offsets, Record, Sink


class Checkpoint:
    """Owns "this batch is durably done": flush all sinks, then commit offsets."""

    def __init__(self, sinks: Sequence[Sink], commit: Callable[[Offsets], None]) -> None:
        self._sinks = list(sinks)
        self._commit = commit
        self._offsets: Offsets = {}

    def add(self, record: Record, topic: str, partition: int, offset: int) -> None:
        """Hand a result to every sink and remember that its input offset is handled."""
        for sink in self._sinks:
            sink.add(record)
        self.mark(topic, partition, offset)

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """Record an input offset as handled without producing a record."""
        key = (topic, partition)
        self._offsets[key] = max(self._offsets.get(key, 0), offset + 1)

    @property
    def pending(self) -> Offsets:
        """Offsets that the next :meth:`commit` will commit."""
        return dict(self._offsets)

    def flush(self) -> None:
        """Durably write everything added; raise if any sink fails.

        Nothing is lost on failure: sinks keep what they could not write, and a later
        flush writes it.
        """
        for sink in self._sinks:
            sink.flush()

    def take_offsets(self) -> Offsets:
        """The offsets of everything added since the last take: call only after :meth:`flush`."""
        offsets, self._offsets = self._offsets, {}
        return offsets

    def commit(self) -> Offsets:
        """Flush every sink, then commit; on any failure nothing is committed."""
        self.flush()
        offsets = self.take_offsets()
        if offsets:
            self._commit(offsets)
        return offsets
