"""Micro-batching: gather records until the batch is full or has waited long enough.

While a batch is in the model, the run loop keeps fetching the *next* one
(:meth:`MicroBatcher.prefetch`), so the broker round trips overlap with compute instead
of following it; at most one batch waits beside the one in flight, so memory stays
bounded and the partitions are paused once it is full (backpressure).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from consumers.source import Source, SourceRecord


class MicroBatcher:
    """Pulls from a source into batches of at most ``max_size``, waiting at most ``max_wait_s``.

    The wait starts with the first record of a batch (prefetched or not), so a quiet stream
    never holds a record longer than ``max_wait_s`` (plus one poll) before its batch starts.
    """

    def __init__(
        self,
        source: Source,
        max_size: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            msg = f"max_size must be >= 1, got {max_size}"
            raise ValueError(msg)
        self._source = source
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._pending: list[SourceRecord] = []
        self._first_at = 0.0

    @property
    def full(self) -> bool:
        """The prefetched batch holds ``max_size`` records: fetch no more."""
        return len(self._pending) >= self._max_size

    @property
    def pending(self) -> int:
        """Records prefetched for the next batch."""
        return len(self._pending)

    def prefetch(self, timeout_s: float) -> int:
        """Poll once into the next batch (while the current one is in the model)."""
        if self.full:
            return 0
        records = self._source.poll(timeout_s, self._max_size - len(self._pending))
        if records and not self._pending:
            self._first_at = self._clock()
        self._pending.extend(records)
        return len(records)

    def drop(self, partitions: Collection[tuple[str, int]]) -> int:
        """Forget prefetched records of revoked partitions (their new owner reads them)."""
        before = len(self._pending)
        self._pending = [r for r in self._pending if (r.topic, r.partition) not in partitions]
        return before - len(self._pending)

    def next_batch(self, idle_timeout_s: float) -> list[SourceRecord]:
        """The next batch; empty if nothing arrived within ``idle_timeout_s``."""
        batch, self._pending = self._pending, []
        if batch:
            deadline = self._first_at + self._max_wait_s
        else:
            batch = self._source.poll(idle_timeout_s, self._max_size)
            if not batch:
                return batch
            deadline = self._clock() + self._max_wait_s
        while len(batch) < self._max_size:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            batch.extend(self._source.poll(remaining, self._max_size - len(batch)))
        return batch
