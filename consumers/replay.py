"""The replay producer: sends a stream of events to Kafka at a steady rate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from consumers.connection import KafkaConnection
from consumers.producer import make_producer


@dataclass(frozen=True)
class ReplayItem:
    """One event to send: the topic, the partition key and the payload.

    ``raw`` overrides the JSON payload with exact bytes (used to replay
    malformed input on purpose).
    """

    topic: str
    key: str
    payload: Mapping[str, Any] | None = None
    raw: bytes | None = None

    def value(self) -> bytes:
        """The bytes put on the topic."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.payload, ensure_ascii=False, default=str).encode("utf-8")


def replay(
    connection: KafkaConnection,
    items: Iterable[ReplayItem],
    *,
    rate: float = 0.0,
    total: int | None = None,
    stop: threading.Event | None = None,
    progress: bool = True,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send ``items`` at ``rate`` messages/second (0 = as fast as possible).

    Returns the number sent; stops early when ``stop`` is set.  ``on_sent`` is
    called with the running count (for callers that draw their own progress).
    """
    producer = make_producer(connection)
    sent = 0
    started = time.monotonic()
    try:
        with tqdm(total=total, desc="replay", unit="msg", disable=not progress) as bar:
            for item in items:
                if stop is not None and stop.is_set():
                    break
                if rate > 0:
                    due = started + sent / rate
                    delay = due - time.monotonic()
                    if delay > 0 and _wait(delay, stop):
                        break
                producer.send(item.topic, key=item.key.encode("utf-8"), value=item.value())
                sent += 1
                bar.update(1)
                if on_sent is not None:
                    on_sent(sent)
        producer.flush()
    finally:
        producer.close()
    return sent


def _wait(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set meanwhile."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)
