"""The harness's own Kafka traffic: fresh topic sets, the backlog, paced sending, counting.

Every side reads the input through its own consumer group and writes to topics of its own,
so one broker serves the whole harness (and the test session) without crosstalk.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition
from tqdm import tqdm

from consumers.connection import KafkaConnection
from consumers.producer import make_producer
from consumers.topics import ensure_topics

from .mix import Message


@dataclass(frozen=True)
class Topics:
    """Input, output and alert topics plus a consumer group, all unique to one run."""

    chat: str
    news: str
    enriched: str
    deadletter: str
    alerts: str
    group: str

    @classmethod
    def fresh(cls, label: str) -> Topics:
        """Names no earlier run used (a random tag after ``label``)."""
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        return cls(
            chat=f"bench-chat-{tag}",
            news=f"bench-news-{tag}",
            enriched=f"bench-enriched-{tag}",
            deadletter=f"bench-deadletter-{tag}",
            alerts=f"bench-alerts-{tag}",
            group=f"bench-{tag}",
        )

    def with_fresh_outputs(self, label: str) -> Topics:
        """New output topics and group, reading these chat and news topics."""
        fresh = Topics.fresh(label)
        return Topics(self.chat, self.news, fresh.enriched, fresh.deadletter,
                      fresh.alerts, fresh.group)

    def topic(self, message: Message) -> str:
        """The input topic of ``message``."""
        return self.chat if message.kind == "chat" else self.news

    def all(self) -> list[str]:
        """Every topic of the set."""
        return [self.chat, self.news, self.enriched, self.deadletter, self.alerts]


def create(connection: KafkaConnection, topics: Topics, partitions: int) -> None:
    """Create the set's topics (idempotent)."""
    ensure_topics(connection, topics.all(), partitions)


def produce(
    connection: KafkaConnection,
    topics: Topics,
    messages: Sequence[Message],
    *,
    rate: float = 0.0,
    count: int | None = None,
    progress: bool = True,
    desc: str = "produce",
) -> float:
    """Send ``count`` messages (cycling through ``messages``) at ``rate`` msg/s (0: at once).

    Each message's event time is stamped just before it is sent, so end-to-end latency
    starts when the producer hands it over.  Returns the rate actually achieved.
    """
    total = len(messages) if count is None else count
    producer = make_producer(connection)
    started = time.monotonic()
    try:
        for i in tqdm(range(total), desc=desc, unit="msg", disable=not progress):
            if rate > 0:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            message = messages[i % len(messages)]
            value = message.value(datetime.now(UTC), cycle=i // len(messages))
            producer.send(topics.topic(message), key=message.key.encode("utf-8"), value=value)
        producer.flush()
    finally:
        producer.close()
    elapsed = time.monotonic() - started
    return total / elapsed if elapsed > 0 else float("inf")


def count_records(
    connection: KafkaConnection, topic: str, expected: int, timeout_s: float = 60.0
) -> int:
    """How many records ``topic`` holds (reads until ``expected`` or ``timeout_s``)."""
    consumer = KafkaConsumer(
        **connection.client_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        receive_message_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen = 0
        deadline = time.monotonic() + timeout_s
        while seen < expected and time.monotonic() < deadline:
            seen += sum(len(batch) for batch in consumer.poll(500).values())
        # Anything beyond what was expected (duplicates) shows up within a last poll.
        seen += sum(len(batch) for batch in consumer.poll(500).values())
        return seen
    finally:
        consumer.close()


def wait_for(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``done`` every 20 ms; ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            msg = f"{what} not done after {timeout_s:.0f} s"
            raise TimeoutError(msg)
        time.sleep(0.02)
