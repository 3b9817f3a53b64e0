"""Sources: where raw messages come from.  The run loop sees only :class:`Source`.

:class:`KafkaSource` is one kafka-python consumer group member subscribed to
the chat and news topics.  Auto-commit is off: offsets are committed by the
pipeline's checkpoint, after results are durably written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from consumers.connection import KafkaConnection

log = logging.getLogger(__name__)

#: (topic, partition) -> offset
Offsets = dict[tuple[str, int], int]


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
        """Commit next-offsets-to-read; False if the group rebalanced underneath."""

    def lag(self) -> Offsets:
        """Messages not yet consumed per assigned partition."""

    def close(self) -> None:
        """Leave the group and release connections."""


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
    ) -> None:
        self._consumer = KafkaConsumer(
            *topics,
            **connection.client_kwargs(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(1000, session_timeout_ms // 3),
            request_timeout_ms=30_000,
        )

    def poll(self, timeout_s: float, max_records: int) -> list[SourceRecord]:
        """Poll the group; records keep per-partition order."""
        batches = self._consumer.poll(
            timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
        )
        return [
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

    def commit(self, offsets: Offsets) -> bool:
        """Synchronous commit; a rebalance means another member will redo the records."""
        try:
            self._consumer.commit(
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                    for (topic, partition), offset in offsets.items()
                }
            )
        except CommitFailedError as exc:
            log.warning(
                "commit failed after a rebalance; records will be redelivered",
                extra={"error": str(exc)},
            )
            return False
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
        result = self._consumer.committed(TopicPartition(topic, partition))
        return None if result is None else int(result)

    def close(self) -> None:
        """Leave the group (triggers a rebalance for the others)."""
        self._consumer.close(autocommit=False, timeout_ms=10_000)
