"""A fake kafka-python producer: records what is sent; sends fail, or stay in flight, on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError


class FakeFuture:
    """A send's future: in flight until the producer flushes, then acknowledged or failed."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.is_done = False
        self.waited: list[float | None] = []

    def failed(self) -> bool:
        return self.is_done and self.error is not None

    def get(self, timeout: float | None = None) -> str:
        self.waited.append(timeout)
        if not self.is_done:
            raise KafkaTimeoutError("still in flight")
        if self.error is not None:
            raise self.error
        return "metadata"


@dataclass
class FakeProducer:
    """Records every send, flush timeout and close.

    Like kafka-python, a send is resolved when the producer is flushed; with ``in_flight``
    it is not (the broker has not answered yet).  A send fails with "not leader" when its
    value has been sent no more than ``fail_first`` times, or when its key is in
    ``fail_keys``; ``send_error`` and ``flush_error`` make those calls raise.
    """

    fail_first: int = 0
    fail_keys: set[bytes] = field(default_factory=set)
    in_flight: bool = False
    send_error: Exception | None = None
    flush_error: Exception | None = None
    sends: list[dict[str, Any]] = field(default_factory=list)
    futures: list[FakeFuture] = field(default_factory=list)
    flush_timeouts: list[float | None] = field(default_factory=list)
    closed: bool = False

    def send(self, topic: str, **kwargs: Any) -> FakeFuture:
        if self.send_error is not None:
            raise self.send_error
        self.sends.append({"topic": topic, **kwargs})
        attempt = sum(1 for s in self.sends if s["value"] == kwargs["value"])
        failing = attempt <= self.fail_first or kwargs.get("key") in self.fail_keys
        future = FakeFuture(NotLeaderForPartitionError("broker away") if failing else None)
        self.futures.append(future)
        return future

    def flush(self, timeout: float | None = None) -> None:
        self.flush_timeouts.append(timeout)
        if self.flush_error is not None:
            raise self.flush_error
        if not self.in_flight:
            for future in self.futures:
                future.is_done = True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True
