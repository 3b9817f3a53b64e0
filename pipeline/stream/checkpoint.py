"""The commit protocol: a batch is done only when every sink has durably flushed it.

Modelled on Quix Streams' ``Checkpoint.commit``: sinks take records with ``add()``;
:meth:`Checkpoint.commit` flushes every sink in order, checks that none still holds
anything, and only then commits the source offsets.  A crash between flush and commit
means the batch is redelivered; sinks are keyed by input id (store) or tolerate
duplicates (topics), so redelivery never creates duplicate rows.

Two threads use one checkpoint (see :mod:`pipeline.stream.runner`): the classify thread
adds records and calls :meth:`Checkpoint.flush` (with retries, so a sink outage never
stalls polling); the polling thread, which alone may touch the consumer, calls
:meth:`Checkpoint.commit`, whose flush then finds nothing left to write.  A lock keeps
the two apart.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from consumers.source import Offsets, Partitions, advance
from pipeline.errors import AttnwatchError
from pipeline.sinks.base import Record, Sink


class UnflushedError(AttnwatchError):
    """A sink's flush returned but it still holds records: nothing is committed."""


class Committer(Protocol):
    """What the checkpoint needs of a source: its offset commit."""

    def commit(self, offsets: Offsets) -> bool:
        """Commit ``offsets``; False if the group rebalanced underneath.

        Raises :class:`~consumers.source.CommitError` if it may succeed when tried again.
        """


class Checkpoint:
    """Owns "this batch is durably done": flush all sinks in order, then commit offsets."""

    def __init__(self, sinks: Sequence[Sink], source: Committer) -> None:
        """Flush ``sinks`` in this order, then commit through ``source`` (the consumer).

        ``source.commit`` is looked up at each commit, so a probe that wraps it after the
        checkpoint is built (the throughput harness's ``Timing``) is the one called.
        """
        self._sinks = list(sinks)
        self._source = source
        self._lock = threading.Lock()
        #: Handled but not yet flushed.
        self._pending: Offsets = {}
        #: Flushed but not yet committed.
        self._durable: Offsets = {}

    def add(self, record: Record, topic: str, partition: int, offset: int) -> None:
        """Hand a result to every sink and remember that its input offset is handled."""
        with self._lock:
            for sink in self._sinks:
                sink.add(record, topic, partition)
            advance(self._pending, {(topic, partition): offset + 1})

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """Record an input offset as handled without producing a record."""
        with self._lock:
            advance(self._pending, {(topic, partition): offset + 1})

    def flush(self) -> Offsets:
        """Flush every sink in order; return the offsets that are now durable.

        Raises what a sink raised, or :class:`UnflushedError`: nothing is lost, since sinks
        keep what they could not write and the offsets stay pending for the next flush.
        """
        with self._lock:
            for sink in self._sinks:
                sink.flush()
            # As Quix checks that the producer has nothing left: a flush that returned
            # while records are still unacknowledged must not let their offsets commit.
            unflushed = [f"{s.name}: {s.pending}" for s in self._sinks if s.pending]
            if unflushed:
                msg = f"sinks still hold records after flushing ({', '.join(unflushed)})"
                raise UnflushedError(msg)
            done, self._pending = self._pending, {}
            advance(self._durable, done)
            return done

    def commit(self, owned: Partitions) -> bool | None:
        """The commit protocol: flush every sink in order, then commit what is durable.

        Only offsets of partitions in ``owned`` are committed; the others are dropped (their
        records go to the partition's new owner).  Returns ``None`` when there was nothing
        to commit, else what the source's commit returned.  A failed flush commits nothing;
        a failed commit keeps the offsets for the next call; both raise.
        """
        self.flush()
        with self._lock:
            offsets = {k: v for k, v in self._durable.items() if k in owned}
            self._durable = {}
            if not offsets:
                return None
            try:
                return self._source.commit(offsets)
            except BaseException:
                advance(self._durable, offsets)
                raise

    def forget(self, partitions: Partitions) -> None:
        """Drop the offsets of revoked partitions: their records are the new owner's."""
        with self._lock:
            for offsets in (self._pending, self._durable):
                for key in partitions & offsets.keys():
                    del offsets[key]
