"""Micro-batching: gather records until the batch is full or has waited long enough."""

from __future__ import annotations

import time
from collections.abc import Callable

from consumers.source import Source, SourceRecord


class MicroBatcher:
    """Pulls from a source into batches of at most ``max_size``, waiting at most ``max_wait_s``.

    The wait starts with the first record of a batch, so a quiet stream never
    holds a record longer than ``max_wait_s`` (plus one poll).
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

    def next_batch(self, idle_timeout_s: float) -> list[SourceRecord]:
        """The next batch; empty if nothing arrived within ``idle_timeout_s``."""
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
