"""Start-up order does not matter: ``attnwatch run`` started before its database and broker.

The process stays up, ``/readyz`` answers 503 naming what is missing (first the store,
then the broker), opening is retried with capped backoff, and once PostgreSQL and then
Kafka come up it becomes ready without a restart; SIGTERM then ends it cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from attnwatch.service import service_when_ready
from consumers.broker import EmbeddedBroker
from consumers.topics import ensure_topics
from pipeline.health import Health
from pipeline.metrics import Metrics
from tests.integration.helpers import make_topics, unique_settings
from tests.integration.processes import Worker
from tests.integration.test_faults import LoopThread
from tests.support.network import free_port
from tests.support.postgres import SUPERUSER, _Cluster, find_pg_bindir
from tests.support.waiting import wait_for

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_S = 120.0


def readyz(port: int) -> tuple[int, dict[str, Any]] | None:
    """``(status, body)`` of ``/readyz``, ``None`` while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (OSError, ValueError):
        return None


def test_run_started_before_its_database_and_broker_waits_then_becomes_ready(tiny_model, tmp_path):
    cluster = _Cluster(find_pg_bindir())
    pg_port = free_port()
    broker = EmbeddedBroker(port=free_port(), log_file=tmp_path / "tansu.log")
    metrics_port = free_port()
    store_url = f"postgresql://{SUPERUSER}@127.0.0.1:{pg_port}/postgres"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNWATCH_")}
    env.update(
        {
            "ATTNWATCH_STORE__URL": store_url,
            "ATTNWATCH_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "ATTNWATCH_KAFKA__GROUP_ID": "startup-order",
            "ATTNWATCH_MODEL__DIR": str(tiny_model),
            "ATTNWATCH_MODEL__WATCH_INTERVAL_S": "0",
            "ATTNWATCH_STREAM__METRICS_PORT": str(metrics_port),
            "ATTNWATCH_STREAM__RETRY_BACKOFF_MAX_S": "1",
            "ATTNWATCH_STREAM__IO_TIMEOUT_S": "10",
            "ATTNWATCH_STREAM__SHUTDOWN_TIMEOUT_S": "10",
            "PYTHONUNBUFFERED": "1",
        }
    )
    cluster.init()
    try:
        with Worker(["attnwatch", "run"], env, tmp_path / "logs") as worker:
            def missing(component: str, words: str) -> dict[str, Any] | None:
                answer = readyz(metrics_port)
                if answer is None or answer[0] != 503:
                    return None
                state = answer[1]["components"][component]
                return answer[1] if not state["ok"] and words in state["detail"] else None

            # Nothing is up: the process stays, not ready because of the store.
            body = worker.until(
                lambda: missing("store", "could not open store"), START_S, "store missing"
            )
            assert body["alive"] is True and body["ready"] is False
            # Still there, and still retrying (capped at 1 s): a second report comes.
            worker.until(
                lambda: any("retrying" in e.get("message", "") for e in worker.logs()[1:]),
                30,
                "a second retry report",
            )

            # The database comes up; the broker is now what is missing.
            cluster.start(pg_port)
            body = worker.until(lambda: missing("broker", "Kafka"), START_S, "broker missing")
            assert body["components"]["store"]["ok"] is True

            # The broker comes up: ready without a restart.
            with broker:
                ensure_topics(broker.connection, ["chat", "news", "enriched", "deadletter",
                                                  "alerts"], 1)  # fmt: skip
                worker.until(
                    lambda: (a := readyz(metrics_port)) is not None and a[0] == 200,
                    START_S,
                    "/readyz answering 200",
                )
                worker.signal(signal.SIGTERM)
                assert worker.wait(60) == 0, worker.tail()
    finally:
        cluster.stop()


def test_run_on_a_quiet_topic_becomes_ready_without_a_first_commit(broker, tiny_model, tmp_path):
    """Everything up, nothing to consume: ``/readyz``'s components all turn ok.

    Readiness used to wait for the first commit to report the store and the broker, so a
    consumer of a quiet topic never became ready (found by running the image, issue 26).
    """
    settings = unique_settings(f"sqlite:///{tmp_path / 'store.db'}", tiny_model)
    make_topics(settings, broker.connection)
    health, stop = Health(), threading.Event()
    with service_when_ready(
        settings, broker.connection, stop, health=health, metrics=Metrics()
    ) as svc:
        assert svc is not None
        loop = LoopThread(svc)
        try:
            wait_for(health.ready, 60, f"ready on a quiet topic: {health.snapshot()}")
            components = health.snapshot()["components"]
            assert isinstance(components, dict)
            assert components["store"]["ok"] and components["broker"]["ok"]
            assert svc.store.count() == 0
        finally:
            loop.stop.set()
            stop.set()
            wait_for(lambda: not loop.alive(), 30, "the run loop stopped")
