"""What the harness hooks into a running loop, without changing the loop's code.

- :class:`Timing` wraps the source's ``poll`` and ``commit``: first record in hand, last commit;
- :class:`LatencyRecorder` stands in for the ``end_to_end_latency`` histogram and keeps every
  observation (the histogram's buckets are too coarse for p99), still observing the histogram;
- :func:`fetched_from_all` reads the lag gauge: every input partition is being fetched from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from consumers.source import KafkaSource, Offsets, SourceRecord
from pipeline.metrics import Metrics

from .kafka_io import Topics


class Timing:
    """Wraps a source's poll and commit: time of the first record and of the last commit.

    Wrapped after the runner is built (``service`` builds both): the runner's batcher
    and its checkpoint hold the source object and look ``poll`` and ``commit`` up on it at
    each call, so the wrappers are what they call.
    """

    def __init__(self, source: KafkaSource) -> None:
        self.first: float | None = None
        self.last_commit: float | None = None
        poll, commit = source.poll, source.commit

        def timed_poll(timeout_s: float, max_records: int) -> list[SourceRecord]:
            records = poll(timeout_s, max_records)
            if records and self.first is None:
                self.first = time.perf_counter()
            return records

        def timed_commit(offsets: Offsets) -> bool:
            ok = commit(offsets)
            self.last_commit = time.perf_counter()
            return ok

        source.poll = timed_poll  # type: ignore[method-assign]
        source.commit = timed_commit  # type: ignore[method-assign]

    @property
    def seconds(self) -> float:
        if self.first is None or self.last_commit is None:
            return 0.0
        return self.last_commit - self.first


class LatencyRecorder:
    """Stands in for the ``end_to_end_latency`` histogram: keeps every value, then observes."""

    def __init__(self, histogram: Any) -> None:
        self._histogram = histogram
        self.values: list[float] = []

    def observe(self, amount: float, exemplar: Any = None) -> None:
        self.values.append(amount)
        self._histogram.observe(amount, exemplar)


def fetched_from_all(metrics: Metrics, topics: Topics, partitions: int) -> Callable[[], bool]:
    """True once every input partition has a lag sample: assigned, positioned, fetched from.

    The run loop sets the lag gauge from fetch responses (``KafkaSource.lag``); reading the
    gauge is thread-safe, asking the consumer from another thread would not be.
    """
    labels = [{"topic": t, "partition": str(p)} for t in (topics.chat, topics.news)
              for p in range(partitions)]

    def done() -> bool:
        sample = metrics.registry.get_sample_value
        return all(sample("attnwatch_consumer_lag", label) is not None for label in labels)

    return done
