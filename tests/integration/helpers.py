"""Helpers for integration tests: unique topics, producing test events, running the loop until
done, reading topics back."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from attnwatch.settings import Settings, load_settings
from consumers.connection import KafkaConnection
from consumers.topics import ensure_topics
from models.data import seed
from pipeline.metrics import Metrics
from pipeline.stream.runner import Runner, RunReport

#: The consumer group session of every test member.  Tansu answers a JoinGroup after about
#: half the session (measured: 5.2 s at Kafka's default 10 s, 3.2 s at 6 s, 2.3 s at 3 s),
#: and a SIGKILLed member holds its partitions for a whole session.  3 s was tried: with
#: the machine loaded (load 8 on 2 cores) two members starting together did not settle in
#: 90 s, so 6 s, which the process tests had used all along.
SESSION_TIMEOUT_MS = 6000


def unique_settings(store_url: str, model_dir, **overrides: Any) -> Settings:
    """Settings with topics and group of their own, so tests share one broker safely."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "store_url": store_url,
        "model_dir": model_dir,
        "topic_chat": f"chat-{tag}",
        "topic_news": f"news-{tag}",
        "topic_enriched": f"enriched-{tag}",
        "topic_deadletter": f"deadletter-{tag}",
        "topic_alerts": f"alerts-{tag}",
        "group_id": f"attnwatch-{tag}",
        "metrics_port": 0,
        "device": "cpu",
        "batch_max_size": 32,
        "batch_max_wait_ms": 100,
        "partitions": 3,
        # Tests read the lag gauge to know when every partition has been fetched from.
        "lag_interval_s": 0.2,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
    }
    values.update(overrides)
    return load_settings(**values)


def make_topics(settings: Settings, connection: KafkaConnection) -> None:
    ensure_topics(connection, settings.topics(), settings.partitions)


def bad_values(now: datetime) -> list[tuple[str, bytes]]:
    """(kind, raw value) for every class of bad input the schema rejects."""
    chat = {
        "message_id": "x",
        "conversation_id": "c",
        "channel": "web",
        "role": "customer",
        "text": "hello",
        "ts": now.isoformat(),
    }
    news = {"article_id": "y", "source": "wire", "headline": "h", "ts": now.isoformat()}
    return [
        ("chat", b"\xff\xfe not utf-8"),
        ("chat", b'{"message_id": "1", "text": '),
        ("chat", b"[1, 2, 3]"),
        ("chat", json.dumps({**chat, "schema_version": 9}).encode()),
        ("chat", json.dumps({k: v for k, v in chat.items() if k != "text"}).encode()),
        ("chat", json.dumps({**chat, "role": "robot"}).encode()),
        ("chat", json.dumps({**chat, "ts": now.replace(tzinfo=None).isoformat()}).encode()),
        ("chat", json.dumps({**chat, "text": "   "}).encode()),
        ("news", json.dumps({**news, "tickers": "NWB"}).encode()),
        ("news", json.dumps({k: v for k, v in news.items() if k != "headline"}).encode()),
    ]


def produce_mixed(
    settings: Settings, connection: KafkaConnection, n_valid: int, n_bad: int, rng_seed: int = 0
) -> dict[str, Any]:
    """Produce valid chat/news events and bad ones, shuffled; return what was sent where."""
    rng = random.Random(rng_seed)
    chats = seed.load_chat()
    news = seed.load_news()
    now = datetime.now(UTC) - timedelta(seconds=5)
    items: list[tuple[str, str, bytes, str | None]] = []  # topic, key, value, input id
    for i in range(n_valid):
        if i % 4 == 3:
            article = rng.choice(news)
            payload = {
                "article_id": f"a{i}",
                "source": "Harbor Wire",
                "headline": article.headline,
                "body": article.body,
                "tickers": list(article.tickers),
                "ts": now.isoformat(),
            }
            items.append((settings.topic_news, f"a{i}", json.dumps(payload).encode(), f"news:a{i}"))
        else:
            example = rng.choice(chats)
            payload = {
                "message_id": f"m{i}",
                "conversation_id": f"c{i // 3}",
                "channel": rng.choice(["web", "app"]),
                "role": "agent" if i % 4 == 2 else "customer",
                "text": example.text,
                "ts": now.isoformat(),
            }
            items.append(
                (settings.topic_chat, f"c{i // 3}", json.dumps(payload).encode(), f"chat:m{i}")
            )
    bad = bad_values(now)
    for j in range(n_bad):
        kind, value = bad[j % len(bad)]
        topic = settings.topic_chat if kind == "chat" else settings.topic_news
        items.append((topic, f"bad{j}", value, None))
    rng.shuffle(items)
    producer = KafkaProducer(**connection.client_kwargs(), acks="all", linger_ms=5)
    futures = [(producer.send(t, key=k.encode(), value=v), v, i) for t, k, v, i in items]
    producer.flush()
    last: dict[tuple[str, int], int] = {}
    sent_bad: dict[tuple[str, int, int], bytes] = {}
    for future, value, input_id in futures:
        meta = future.get(timeout=30)
        key = (meta.topic, meta.partition)
        last[key] = max(last.get(key, -1), meta.offset)
        if input_id is None:
            sent_bad[(meta.topic, meta.partition, meta.offset)] = value
    producer.close()
    return {
        "last_offsets": last,
        "bad": sent_bad,
        "input_ids": {i for _, _, _, i in items if i is not None},
        "event_time": now,
    }


def run_until(runner: Runner, done: Callable[[], bool], timeout_s: float = 120) -> RunReport:
    """Run ``runner`` in this thread until ``done()`` holds; fail if it does not in ``timeout_s``.

    A watcher thread checks ``done`` every 50 ms and sets the loop's stop event; the
    loop sees it between batches, so the batch in hand is finished and committed.
    """
    stop = threading.Event()
    timed_out = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not stop.wait(0.05):
            if done():
                stop.set()
            elif time.monotonic() > deadline:
                timed_out.set()
                stop.set()

    watcher = threading.Thread(target=watch, name="run-until", daemon=True)
    watcher.start()
    try:
        report = runner.run(stop)
    finally:
        stop.set()
        watcher.join()
    assert not timed_out.is_set(), f"run loop not done after {timeout_s} s: {report}"
    return report


def handled(runner: Runner, expected: int) -> Callable[[], bool]:
    """Done once the runner has enriched or dead-lettered ``expected`` records."""

    def done() -> bool:
        totals = runner.totals
        return totals.enriched + totals.dead_letters >= expected

    return done


def quiet_after_assignment(
    metrics: Metrics, partitions: list[tuple[str, int]], quiet_s: float
) -> Callable[[], bool]:
    """Done ``quiet_s`` after every partition has been fetched from once.

    The run loop's lag gauge gets a sample for a partition once a fetch response
    for it has come back (its high watermark is known), i.e. the member has been
    assigned the partition and anything past the committed offset is in hand.
    Reading the gauge is thread-safe; asking the consumer from here would not be.
    """
    fetched_at: float | None = None

    def done() -> bool:
        nonlocal fetched_at
        if fetched_at is None:
            labels = [{"topic": t, "partition": str(p)} for t, p in partitions]
            sample = metrics.registry.get_sample_value
            if all(sample("attnwatch_consumer_lag", label) is not None for label in labels):
                fetched_at = time.monotonic()
            return False
        return time.monotonic() - fetched_at >= quiet_s

    return done


def read_topic(connection: KafkaConnection, topic: str, expected: int, timeout_s: float = 30):
    """Every record of ``topic``: at least ``expected``, read up to the end of each partition.

    The end is the high watermark each fetch response carries (Tansu's ListOffsets
    under-counts after multi-record batches, so ``end_offsets`` is not used): once every
    partition's position has reached it, anything produced before the call is in hand,
    duplicates included.  Returns what it has after ``timeout_s`` (the caller asserts).
    """
    consumer = KafkaConsumer(
        # kafka-python 2.2's default frame limit is below one fetch of a large topic.
        receive_message_max_bytes=64 * 1024 * 1024,
        **connection.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)

    def at_end() -> bool:
        ends = [consumer.highwater(tp) for tp in partitions]
        return all(
            end is not None and consumer.position(tp) >= end
            for tp, end in zip(partitions, ends, strict=True)
        )

    records = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for batch in consumer.poll(200).values():
            records.extend(batch)
        if len(records) >= expected and at_end():
            break
    consumer.close()
    return records


def committed_offsets(connection: KafkaConnection, group_id: str, partitions):
    consumer = KafkaConsumer(
        **connection.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    try:
        return {(t, p): consumer.committed(TopicPartition(t, p)) for t, p in partitions}
    finally:
        consumer.close()
