"""Scale-out: several ``attnwatch run`` processes in one consumer group, one PostgreSQL store.

Three real processes join one group over topics of 6 partitions, one after another, as an
operator scales a Deployment from 1 to 3 replicas; then the first is stopped mid-run (as a
rolling update or a scale-in does).  Every message must be stored exactly once, the group's
committed offsets must reach the end of every partition, and the partitions of the stopped
process must be handed over without loss.  The throughput with 1 and 2 processes is printed
(measured from the store's processing times; not asserted: the machine is shared).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from attnwatch.settings import Settings
from consumers.broker import EmbeddedBroker
from pipeline.store import read_events
from pipeline.store.engine import create_engine, normalise_url
from tests.integration.helpers import committed_offsets, make_topics, unique_settings
from tests.integration.processes import ROOT, Worker, worker_env
from tests.integration.test_crash_recovery import (
    START_S,
    produce_chats,
    wait_until_stored,
)
from tests.support.waiting import wait_for

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 6
WAVE = 900


def fresh_database(postgres_url: str) -> str:
    """A new empty database on the session's PostgreSQL server; its URL."""
    url = make_url(postgres_url)
    name = f"scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.set(database=name).render_as_string(hide_password=False)


def chats(prefix: str, n: int) -> list[tuple[str, str]]:
    lines = [
        "my card payment was declined twice today",
        "thanks, the refund arrived and everything is fine now",
        "why is my transfer still pending after three days and nobody answers?",
        "can I raise the limit on my savings account",
    ]
    return [(f"{prefix}{i}", lines[i % len(lines)]) for i in range(n)]


def assigned(worker: Worker) -> set[tuple[str, int]]:
    """The partitions ``worker`` holds now, from its latest assignment log."""
    changes = [
        e
        for e in worker.logs()
        if e.get("message") in ("partitions assigned", "partitions revoked")
    ]
    if not changes or changes[-1]["message"] != "partitions assigned":
        return set()
    return {(t, int(p)) for t, p in changes[-1]["partitions"]}


def balanced(workers: list[Worker], total: int) -> bool:
    """Every worker holds partitions, no two hold the same, and all ``total`` are held."""
    held = [assigned(w) for w in workers]
    union = set().union(*held)
    return all(held) and sum(map(len, held)) == len(union) == total


def lease_holder(store_url: str) -> int | None:
    """The pid of the process holding the alert evaluator's lease (owner is host:pid)."""
    engine = create_engine(normalise_url(store_url))
    try:
        with engine.connect() as conn:
            owners = (
                conn.execute(sa.text("SELECT owner FROM leases WHERE name = 'alert-evaluator'"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert len(owners) <= 1
    return int(owners[0].rsplit(":", 1)[1]) if owners else None


def rate(store_url: str, ids: set[str]) -> float:
    """Messages per second over the span of processing times of ``ids``."""
    events = read_events(store_url)
    times = [t for i, t in zip(events["input_id"], events["processed_time"]) if i in ids]
    span = (max(times) - min(times)).total_seconds()
    return len(times) / span if span > 0 else float("inf")


def test_three_processes_share_the_partitions_and_a_stopped_one_hands_over(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, postgres_url: str
) -> None:
    store_url = fresh_database(postgres_url)
    settings: Settings = unique_settings(
        store_url,
        tiny_model,
        bootstrap_servers=broker.bootstrap_servers,
        partitions=PARTITIONS,
        batch_max_wait_ms=50,
        # Two processes on two cores: one torch thread each, so they do not fight.
        torch_threads=1,
        # A stopped member's partitions move once the group rebalances; unique_settings'
        # short session keeps the rejoin of the others quick.
        shutdown_timeout_s=15.0,
        # Every replica starts an alert evaluator; the store's lease lets one evaluate.
        alert_interval_s=1.0,
    )
    make_topics(settings, broker.connection)
    env = worker_env(settings)
    migrated = subprocess.run(
        [sys.executable, "-m", "attnwatch", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "events" in migrated.stdout and "leases" in migrated.stdout
    total = 2 * PARTITIONS  # chat and news
    connection = broker.connection
    logs = tmp_path / "logs"
    sent: dict[str, tuple[str, int, int]] = {}

    with contextlib.ExitStack() as stack:

        def start() -> Worker:
            return stack.enter_context(Worker(["attnwatch", "run"], env, logs))

        def settle(workers: list[Worker]) -> None:
            def done() -> bool:
                exited = [w for w in workers if w.returncode is not None]
                assert not exited, "\n\n".join(w.tail() for w in exited)
                return balanced(workers, total)

            try:
                wait_for(done, START_S, f"{len(workers)} members balanced")
            except AssertionError as exc:
                msg = f"{exc}\n" + "\n\n".join(w.tail() for w in workers)
                raise AssertionError(msg) from None

        one = start()
        settle([one])
        wave = produce_chats(settings, connection, chats("one-", WAVE))
        sent.update(wave)
        wait_until_stored(one, store_url, (len(sent), 0), 120.0)
        rates = [rate(store_url, set(wave))]

        two = start()
        settle([one, two])
        wave = produce_chats(settings, connection, chats("two-", WAVE))
        sent.update(wave)
        wait_until_stored(two, store_url, (len(sent), 0), 120.0)
        rates.append(rate(store_url, set(wave)))

        three = start()
        settle([one, two, three])
        wave = produce_chats(settings, connection, chats("three-", 3 * WAVE))
        sent.update(wave)
        # Stop the first process mid-run, once the third wave is flowing.
        wait_until_stored(one, store_url, (2 * WAVE + WAVE // 2, 0), 120.0)
        stopped = time.monotonic()
        one.signal(signal.SIGTERM)
        assert one.wait(settings.shutdown_timeout_s + 10.0) == 0, one.tail()
        drained = time.monotonic() - stopped
        settle([two, three])
        counts = wait_until_stored(two, store_url, (len(sent), 0), 180.0)
        assert counts == (len(sent), 0), two.tail()
        for worker in (two, three):
            assert worker.returncode is None, worker.tail()
        # One evaluator across the replicas, held by a process that is still running.
        holder = wait_for(lambda: lease_holder(store_url), 30.0, "the evaluator lease held")
        assert holder in {two.process.pid, three.process.pid}, holder

    events = read_events(store_url)
    assert len(events) == len(sent) == 5 * WAVE
    assert set(events["input_id"]) == set(sent)
    last: dict[tuple[str, int], int] = {}
    for topic, partition, offset in sent.values():
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    assert len(last) == PARTITIONS, "the chats did not reach every partition"
    committed = committed_offsets(connection, settings.group_id, list(last))
    assert committed == {tp: offset + 1 for tp, offset in last.items()}
    print(
        f"scale-out: 1 process {rates[0]:.0f} msg/s, 2 processes {rates[1]:.0f} msg/s "
        f"({rates[1] / rates[0]:.2f}x); first process drained and left in {drained:.1f} s"
    )
