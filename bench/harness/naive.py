"""The naive loop: what a user would write with kafka-python, the model and SQLAlchemy.

One consumer iterated message by message (auto-commit on, as kafka-python defaults), the
project's ``predict`` called once per message on that message's units (the run loop's units,
so both do the same model work), one ``INSERT`` per row committed on its own into a temporary
SQLite file.  No enriched topic, no metrics, no dead letters: it does less than the run loop.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer
from tqdm import tqdm

from consumers.connection import KafkaConnection
from models.classifier import AttentionTextClassifier
from pipeline.schema import ChatEvent, DecodeError, Kind, decode
from pipeline.stream.enrich import INTENT, SENTIMENT, units

from .kafka_io import Topics

_metadata = sa.MetaData()
#: The table a user would write for themselves: a label per task and the two times.
rows_table = sa.Table(
    "predictions",
    _metadata,
    sa.Column("input_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent", sa.Text),
    sa.Column("sentiment", sa.Text, nullable=False),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_time", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class NaiveResult:
    """Messages consumed, rows stored and the throughput between first record and last row."""

    messages: int
    rows: int
    seconds: float
    msg_per_s: float
    load_avg: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def run_naive(
    connection: KafkaConnection,
    topics: Topics,
    expected: int,
    classifier: AttentionTextClassifier,
    *,
    max_sentences: int = 64,
    idle_timeout_s: float = 60.0,
    progress: bool = True,
) -> NaiveResult:
    """Consume ``expected`` messages from ``topics``' chat and news topics, one at a time."""
    with tempfile.TemporaryDirectory(prefix="attnwatch-naive-") as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'naive.db'}")
        _metadata.create_all(engine)
        consumer = KafkaConsumer(
            topics.chat,
            topics.news,
            **connection.client_kwargs(),
            group_id=topics.group,
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(idle_timeout_s * 1000),
        )
        handled = 0
        first = last = 0.0
        try:
            with tqdm(total=expected, desc="naive loop", unit="msg", disable=not progress) as bar:
                for record in consumer:
                    if not handled:
                        first = time.perf_counter()
                    kind: Kind = "chat" if record.topic == topics.chat else "news"
                    event = decode(kind, record.value)
                    if isinstance(event, DecodeError):
                        msg = f"naive loop: undecodable input {event.reason}"
                        raise ValueError(msg)
                    predictions = classifier.predict(units(event, max_sentences)[0])
                    head = predictions[0]
                    customer = isinstance(event, ChatEvent) and event.role == "customer"
                    row = {
                        "input_id": event.input_id,
                        "kind": kind,
                        "text": event.text,
                        "intent": head[INTENT].label if customer and INTENT in head else None,
                        "sentiment": head[SENTIMENT].label,
                        "event_time": event.ts,
                        "processed_time": datetime.now(UTC),
                    }
                    with engine.begin() as conn:
                        conn.execute(sa.insert(rows_table).values(**row))
                    last = time.perf_counter()
                    handled += 1
                    bar.update(1)
                    if handled >= expected:
                        break
        finally:
            consumer.close()
        with engine.connect() as conn:
            stored = int(conn.execute(sa.select(sa.func.count()).select_from(rows_table))
                         .scalar_one())
        engine.dispose()
    if handled < expected:
        msg = f"naive loop: {handled} of {expected} messages before {idle_timeout_s:.0f} s idle"
        raise TimeoutError(msg)
    seconds = last - first
    return NaiveResult(handled, stored, seconds, handled / seconds if seconds > 0 else 0.0,
                       os.getloadavg()[0])


def warm_up(classifier: AttentionTextClassifier, texts: Sequence[str]) -> None:
    """A first forward allocates; do it before anything is timed."""
    classifier.predict(list(texts[:8]))
