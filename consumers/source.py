"""Sources: where raw messages come from.  The run loop sees only :class:`Source`.

:class:`KafkaSource` is one kafka-python consumer group member subscribed to
the chat and news topics.  Auto-commit is off: offsets are committed by the
pipeline's checkpoint, after results are durably written.

kafka-python's consumer is not thread-safe: every method here must be called
from the one thread that polls.  The run loop keeps that thread polling while
another thread classifies (with all partitions paused, so the group sees a live
member and nothing new is fetched); rebalance callbacks run inside ``poll``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from consumers.connection import KafkaConnection

log = logging.getLogger(__name__)

#: Most bytes one fetch response may carry, and per partition (Kafka's defaults are 50 MiB
#: and 1 MiB; the total is lower here so a response always fits in memory comfortably).
FETCH_MAX_BYTES = 16 * 1024 * 1024
PARTITION_FETCH_MAX_BYTES = 1024 * 1024

#: (topic, partition) -> next offset to read, as Kafka commits it.  Defined here only.
Offsets = dict[tuple[str, int], int]
Partitions = set[tuple[str, int]]
#: Called with the partitions being revoked (before) or assigned (after a rebalance).
RebalanceCallback = Callable[[Partitions], None]


def advance(into: Offsets, offsets: Offsets) -> None:
    """Merge ``offsets`` into ``into``; a partition's offset only ever moves forward."""
    for key, offset in offsets.items():
        into[key] = max(into.get(key, 0), offset)


class CommitError(Exception):
    """An offset commit that may succeed if tried again (broker away, timeout)."""


@dataclass(frozen=True)
class SourceRecord:
    """One raw message, exactly as the broker delivered it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


class Source(Protocol):
    """A stream of raw records with committable offsets."""

    def poll(self, timeout_s: float, max_records: int) -> list[SourceRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s``."""

    def commit(self, offsets: Offsets) -> bool:
        """Commit next-offsets-to-read; False if the group rebalanced underneath.

        Raises :class:`CommitError` when the commit may succeed if retried.
        """

    def lag(self) -> Offsets:
        """Messages not yet consumed per assigned partition."""

    def assignment(self) -> Partitions:
        """The partitions this member owns now."""

    def pause(self) -> None:
        """Stop fetching from every assigned partition (and ones assigned later)."""

    def resume(self) -> None:
        """Fetch again from every assigned partition."""

    def on_rebalance(self, revoked: RebalanceCallback, assigned: RebalanceCallback) -> None:
        """Register callbacks run inside :meth:`poll` around a rebalance."""

    def close(self) -> None:
        """Leave the group and release connections."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._source._revoked({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._source._assigned({(tp.topic, tp.partition) for tp in assigned})


class KafkaSource:
    """A consumer-group member over the given topics."""

    def __init__(
        self,
        connection: KafkaConnection,
        topics: Sequence[str],
        group_id: str,
        *,
        auto_offset_reset: str = "earliest",
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
        request_timeout_ms: int = 30_000,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        self._consumer = KafkaConsumer(
            **connection.client_kwargs(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(1000, session_timeout_ms // 3),
            request_timeout_ms=request_timeout_ms,
            # How long the broker may hold a fetch waiting for fetch_min_bytes (1): Kafka's
            # default of 500 ms put a median 117 ms on each record's wait on Tansu at 40 msg/s
            # (13 ms at 100 ms); a trickling stream pays it on every fetch.
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_MAX_BYTES,
            # kafka-python's default frame limit (1,000,000) is below one partition's default
            # fetch (1 MiB): a backlog's first fetch failed with InvalidReceiveError and a
            # reconnect.  Allow the largest fetch response plus framing.
            receive_message_max_bytes=FETCH_MAX_BYTES + 1024 * 1024,
            # kafka-python's own metrics are not exported anywhere; recording them cost
            # time on every fetch (decision 0021).
            metrics_enabled=False,
        )
        self._timeout_ms = request_timeout_ms
        self._paused = False
        self._on_revoked: RebalanceCallback | None = None
        self._on_assigned: RebalanceCallback | None = None
        self._consumer.subscribe(list(topics), listener=_Listener(self))

    def on_rebalance(self, revoked: RebalanceCallback, assigned: RebalanceCallback) -> None:
        """Register callbacks run inside :meth:`poll` around a rebalance."""
        self._on_revoked, self._on_assigned = revoked, assigned

    def _revoked(self, partitions: Partitions) -> None:
        log.info("partitions revoked", extra={"partitions": sorted(partitions)})
        if self._on_revoked is not None:
            self._on_revoked(partitions)

    def _assigned(self, partitions: Partitions) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(partitions)})
        if self._paused and partitions:
            # A member paused for a batch in flight must not fetch new partitions either.
            self._consumer.pause(*(TopicPartition(t, p) for t, p in partitions))
        if self._on_assigned is not None:
            self._on_assigned(partitions)

    def poll(self, timeout_s: float, max_records: int) -> list[SourceRecord]:
        """Poll the group; records keep per-partition order."""
        batches = self._consumer.poll(
            timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
        )
        records = [
            SourceRecord(
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                key=m.key,
                value=m.value,
                timestamp_ms=m.timestamp,
                headers=tuple((k, v) for k, v in (m.headers or [])),
            )
            for messages in batches.values()
            for m in messages
        ]
        if records and self._paused:
            # Never drop what a paused poll returned: rewind so it is fetched again.
            for record in records:
                self._consumer.seek(TopicPartition(record.topic, record.partition), record.offset)
            log.warning("records returned while paused; rewound", extra={"n": len(records)})
            return []
        return records

    def assignment(self) -> Partitions:
        """The partitions this member owns now."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def pause(self) -> None:
        """Stop fetching from every assigned partition (and ones assigned later)."""
        self._paused = True
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        """Fetch again from every assigned partition."""
        self._paused = False
        self._consumer.resume(*self._consumer.paused())

    def commit(self, offsets: Offsets) -> bool:
        """Synchronous, bounded commit; a rebalance means another member will redo the records."""
        try:
            self._consumer.commit(
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                    for (topic, partition), offset in offsets.items()
                },
                timeout_ms=self._timeout_ms,
            )
        except CommitFailedError as exc:
            log.warning(
                "commit failed after a rebalance; records will be redelivered",
                extra={"error": str(exc)},
            )
            return False
        except KafkaError as exc:
            msg = f"offset commit failed: {type(exc).__name__}: {exc}"
            raise CommitError(msg) from exc
        return True

    def lag(self) -> Offsets:
        """High watermark minus position per assigned partition (never negative).

        Uses the high watermark that every fetch response carries, so measuring
        lag sends no request and cannot block the loop while a broker is away.
        Partitions not fetched from yet are left out.
        """
        lag: Offsets = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            # Tansu can under-report a partition's end after multi-record batches;
            # clamp rather than show negative lag.
            lag[(tp.topic, tp.partition)] = max(0, highwater - self._consumer.position(tp))
        return lag

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of one partition."""
        result = self._consumer.committed(
            TopicPartition(topic, partition), timeout_ms=self._timeout_ms
        )
        return None if result is None else int(result)

    def close(self, timeout_s: float = 10.0) -> None:
        """Leave the group (triggers a rebalance for the others)."""
        self._consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))
