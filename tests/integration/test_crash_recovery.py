"""Real processes killed and stopped: nothing lost, nothing stored twice, crashes bounded.

Each test runs the run loop as a child process (``attnwatch run`` or the fault-injecting
``python -m tests.integration.faults``) against the session's Tansu broker and a SQLite
store of its own, configured through ``ATTNWATCH_*`` variables as an operator would.
"""

from __future__ import annotations

import json
import random
import signal
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from attnwatch.settings import Settings
from consumers.broker import EmbeddedBroker
from consumers.connection import KafkaConnection
from models.data import seed
from pipeline.store import open_store, read_dead_letters, read_events
from pipeline.store.attempts import AttemptLog
from tests.integration.helpers import (
    bad_values,
    committed_offsets,
    make_topics,
    produce_mixed,
    read_topic,
    unique_settings,
)
from tests.integration.processes import Worker, store_counts, worker_env

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What the decoder says about each of ``bad_values``, in the same order.
BAD_REASONS = [
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "unsupported_schema_version",
    *["schema_violation"] * 6,
]
#: Exit status of the fault-injecting loop when the model sees its crash marker.
CRASH_EXIT = 86
#: Time to start a child: interpreter, torch, the model, then Tansu's JoinGroup.
START_S = 60.0


def settings_for(
    broker: EmbeddedBroker, tmp_path: Path, tiny_model: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_servers,
        # A SIGKILLed member stays in the group until its session times out; the next
        # start's JoinGroup waits for that: unique_settings' short session keeps it quick.
        "batch_max_wait_ms": 50,
    }
    values.update(overrides)
    settings = unique_settings(f"sqlite:///{tmp_path / 'attnwatch.db'}", tiny_model, **values)
    make_topics(settings, broker.connection)
    return settings


def input_partitions(settings: Settings) -> list[tuple[str, int]]:
    return [
        (topic, p)
        for topic in (settings.topic_chat, settings.topic_news)
        for p in range(settings.partitions)
    ]


def wait_until_stored(
    worker: Worker, store_url: str, target: tuple[int, int], timeout_s: float
) -> tuple[int, int]:
    """Wait until the store holds ``target`` (events, dead letters) or the worker exits."""

    def reached() -> bool:
        events, letters = store_counts(store_url)
        return events >= target[0] and letters >= target[1]

    worker.until_or_exit(reached, timeout_s, f"{target} stored")
    return store_counts(store_url)


def stored_at_least(store_url: str, rows: int) -> bool:
    return sum(store_counts(store_url)) >= rows


def stop_gracefully(worker: Worker, settings: Settings) -> tuple[int, float]:
    """SIGTERM; (exit status, seconds to exit), failing past ``shutdown_timeout_s`` + 10 s."""
    sent = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = worker.wait(settings.shutdown_timeout_s + 10.0)
    return code, time.monotonic() - sent


def produce_chats(
    settings: Settings, connection: KafkaConnection, texts: list[tuple[str, str]]
) -> dict[str, tuple[str, int, int]]:
    """Produce chats ``(message_id, text)`` in order; input id -> (topic, partition, offset)."""
    now = datetime.now(UTC) - timedelta(seconds=5)
    producer = KafkaProducer(**connection.client_kwargs(), acks="all", linger_ms=5)
    futures = []
    for i, (message_id, text) in enumerate(texts):
        payload = {
            "message_id": message_id,
            "conversation_id": f"c{i // 3}",
            "channel": "web",
            "role": "customer",
            "text": text,
            "ts": now.isoformat(),
        }
        value = json.dumps(payload).encode()
        future = producer.send(settings.topic_chat, key=f"c{i // 3}".encode(), value=value)
        futures.append((f"chat:{message_id}", future))
    producer.flush()
    positions = {}
    for input_id, future in futures:
        meta = future.get(timeout=30)
        positions[input_id] = (meta.topic, meta.partition, meta.offset)
    producer.close()
    return positions


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    kills = 5
    settings = settings_for(broker, tmp_path, tiny_model, shutdown_timeout_s=10.0)
    connection = broker.connection
    sent = produce_mixed(settings, connection, n_valid=5000, n_bad=50, rng_seed=7)
    n_valid, n_bad = len(sent["input_ids"]), len(sent["bad"])
    assert (n_valid, n_bad) == (5000, 50)
    # Every kill counts as a death for the records in flight; with more starts allowed
    # than kills, no valid record can reach the redelivery limit by bad luck.
    env = worker_env(settings, max_redeliveries=kills + 1)
    command = ["attnwatch", "run"]
    rng = random.Random(20240610)
    logs = tmp_path / "logs"
    started = time.monotonic()

    for _ in range(kills):
        # Kill at a random point once this run has written something (a kill during
        # start-up tests nothing the next one does not): after 1 to 500 more rows, so
        # the kill lands after a store write and before, during or after its commit.
        target = sum(store_counts(settings.store_url)) + rng.randint(1, 500)
        with Worker(command, env, logs) as worker:
            worker.until(
                partial(stored_at_least, settings.store_url, target),
                START_S,
                f"{target} rows stored",
            )
            assert worker.kill() == -signal.SIGKILL
    killed_at = store_counts(settings.store_url)
    assert sum(killed_at) < n_valid + n_bad, "the kills came too late to interrupt anything"

    with Worker(command, env, logs) as worker:
        counts = wait_until_stored(worker, settings.store_url, (n_valid, n_bad), 180.0)
        assert counts == (n_valid, n_bad), f"{counts} stored:\n{worker.tail()}"
        code, took = stop_gracefully(worker, settings)
        assert code == 0, worker.tail()
        assert took <= settings.shutdown_timeout_s + 5.0
    elapsed = time.monotonic() - started

    # Every valid input stored exactly once (input_id is the primary key, so the count
    # is what proves nothing was written under a second id or lost).
    events = read_events(settings.store_url)
    assert len(events) == n_valid
    assert set(events["input_id"]) == sent["input_ids"]
    # Every bad input dead-lettered exactly once, with its own reason.
    reasons = {
        value: reason
        for (_, value), reason in zip(bad_values(sent["event_time"]), BAD_REASONS, strict=True)
    }
    letters = read_dead_letters(settings.store_url)
    positions = list(
        zip(letters["source_topic"], letters["source_partition"], letters["source_offset"])
    )
    assert len(positions) == len(set(positions)) == n_bad
    assert set(positions) == set(sent["bad"])
    for position, reason in zip(positions, letters["reason"]):
        assert reason == reasons[sent["bad"][position]], position
    # The output topics carry each at least once (a kill after the produce and before the
    # commit sends it again: at-least-once on the topics, exactly-once in the store).
    # Duplicates are at most a batch per kill, so they fit in read_topic's last poll.
    enriched = read_topic(connection, settings.topic_enriched, n_valid)
    assert {r.key.decode() for r in enriched} == sent["input_ids"]
    dead = read_topic(connection, settings.topic_deadletter, n_bad)
    dead_positions = {
        (
            dict(r.headers)["attnwatch.source.topic"].decode(),
            int(dict(r.headers)["attnwatch.source.partition"]),
            int(dict(r.headers)["attnwatch.source.offset"]),
        )
        for r in dead
    }
    assert dead_positions == set(sent["bad"])
    # Nothing left half-started, and the group is at the end of every partition.
    with open_store(settings.store_url) as store:
        assert AttemptLog(store.engine).counts() == {}
    committed = committed_offsets(connection, settings.group_id, sent["last_offsets"])
    assert committed == {tp: offset + 1 for tp, offset in sent["last_offsets"].items()}
    print(f"{kills} kills at {killed_at} stored; {elapsed:.1f} s in all")


def test_a_record_that_kills_the_process_is_dead_lettered_after_the_limit(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    max_redeliveries = 2
    settings = settings_for(
        broker, tmp_path, tiny_model, batch_max_wait_ms=300, shutdown_timeout_s=10.0
    )
    marker = "XYZZY-CRASH"
    chats = seed.load_chat()
    texts = [(f"m{i}", chats[i % len(chats)].text) for i in range(200)]
    texts.insert(100, ("marker", f"my order never came {marker}"))
    positions = produce_chats(settings, broker.connection, texts)
    marker_position = positions.pop("chat:marker")
    env = worker_env(settings, max_redeliveries=max_redeliveries)
    command = ["tests.integration.faults", "--crash-marker", marker]

    # The bound: the marker's attempt count is written to the store before the model
    # sees it (the whole batch's, by ``AttemptLog.begin``) and is only cleared once its
    # result is durable, so every death adds one to it: the first when it dies with its
    # batch-mates, then one per lone retry (``start_one``; the batch-mates are retried
    # alone too and finish).  When a restart finds the count at ``max_redeliveries`` it
    # dead-letters the marker without classifying it.  So the process dies exactly
    # ``max_redeliveries`` times, however the batches are cut after each restart.
    deaths = 0
    for _ in range(max_redeliveries + 2):
        with Worker(command, env, tmp_path / "logs") as worker:
            counts = wait_until_stored(worker, settings.store_url, (200, 1), 120.0)
            if worker.returncode is not None:
                assert worker.returncode == CRASH_EXIT, worker.tail()
                deaths += 1
                continue
            assert counts == (200, 1), f"{counts} stored:\n{worker.tail()}"
            code, _ = stop_gracefully(worker, settings)
            assert code == 0, worker.tail()
            break
    else:
        pytest.fail(f"still dying after {deaths} runs")
    assert deaths == max_redeliveries

    letters = read_dead_letters(settings.store_url)
    assert len(letters) == 1
    letter = letters.iloc[0]
    assert letter["reason"] == "redelivery_limit"
    position = (letter["source_topic"], letter["source_partition"], letter["source_offset"])
    assert position == marker_position
    assert marker.encode() in letter["raw"]
    # Its batch-mates were retried alone and enriched, each once.
    events = read_events(settings.store_url)
    assert len(events) == 200
    assert set(events["input_id"]) == set(positions)
    with open_store(settings.store_url) as store:
        assert AttemptLog(store.engine).counts() == {}


def test_sigterm_drains_the_batch_in_flight_and_commits_exactly_it(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    settings = settings_for(broker, tmp_path, tiny_model, shutdown_timeout_s=15.0)
    connection = broker.connection
    produce_mixed(settings, connection, n_valid=95, n_bad=5, rng_seed=3)
    env = worker_env(settings)
    command = ["tests.integration.faults", "--delay-s", "4"]

    with Worker(command, env, tmp_path / "logs") as worker:
        # Every model call takes 4 s: once the first has started, the first batch is in
        # the model and nothing is written; the runner gives an abandoned batch 2 s, so a
        # runner that abandoned it at SIGTERM instead of draining it would store nothing.
        worker.wait_for_log("slow model call", START_S)
        assert store_counts(settings.store_url) == (0, 0)
        code, took = stop_gracefully(worker, settings)
        assert code == 0, worker.tail()
        assert took <= settings.shutdown_timeout_s + 2.0, took
        # The drained batch's totals, as the loop reports them on its way out.
        report = json.loads(worker.stdout().strip().splitlines()[-1])

    events = read_events(settings.store_url)
    letters = read_dead_letters(settings.store_url)
    stored: dict[tuple[str, int], set[int]] = {}
    for frame in (events, letters):
        for topic, partition, offset in zip(
            frame["source_topic"], frame["source_partition"], frame["source_offset"]
        ):
            stored.setdefault((topic, int(partition)), set()).add(int(offset))
    assert sum(map(len, stored.values())) == report["enriched"] + report["dead_letters"]
    assert 0 < report["enriched"] + report["dead_letters"] < 100, report

    committed = committed_offsets(connection, settings.group_id, input_partitions(settings))
    for tp, offset in committed.items():
        end = offset or 0  # None: nothing committed, so nothing may be stored either
        assert stored.get(tp, set()) == set(range(end)), tp
