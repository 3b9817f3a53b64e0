"""Health states, liveness, and /metrics, /healthz, /readyz over real HTTP."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from prometheus_client import start_http_server

from pipeline.errors import ConfigError
from pipeline.health import MAX_DETAIL_CHARS, NOT_REPORTED, Health
from pipeline.metrics import Metrics
from tests.support.network import free_port
from tests.support.waiting import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def all_ok(health: Health) -> None:
    for name in Health.COMPONENTS:
        health.set(name, True)


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (names case-insensitive, as HTTP has them) and body."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


@pytest.fixture
def served():
    """A Metrics with a Health on a fake clock, served on a free port."""
    metrics = Metrics()
    clock = FakeClock()
    health = Health(liveness_timeout_s=30, clock=clock, metrics=metrics)
    port = metrics.serve(free_port(), health=health)
    yield metrics, health, clock, f"http://127.0.0.1:{port}"
    metrics.close()


# --- states ------------------------------------------------------------------------------


def test_starts_alive_and_not_ready_with_every_component_unreported():
    health = Health()
    snap = health.snapshot()
    assert health.alive() and not health.ready()
    assert snap["alive"] is True and snap["ready"] is False
    assert set(snap["components"]) == set(Health.COMPONENTS)
    for state in snap["components"].values():
        assert state["ok"] is False
        assert state["detail"] == NOT_REPORTED
        since = datetime.fromisoformat(state["since"])
        assert since.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - since) < timedelta(seconds=5)


def test_ready_only_when_every_component_is_ok():
    health = Health()
    for name in Health.COMPONENTS[:-1]:
        health.set(name, True)
        assert not health.ready()
    health.set(Health.COMPONENTS[-1], True)
    assert health.ready()
    health.set("broker", False, "NoBrokersAvailable: localhost:9092")
    assert not health.ready()
    broker = health.snapshot()["components"]["broker"]
    assert broker == {
        "ok": False,
        "detail": "NoBrokersAvailable: localhost:9092",
        "since": broker["since"],
    }
    health.set("broker", True)
    assert health.ready()


def test_since_moves_only_when_ok_changes():
    health = Health()

    def since(name: str) -> datetime:
        return datetime.fromisoformat(health.snapshot()["components"][name]["since"])

    start = since("store")
    # A later change must carry a later time: let the wall clock move past ``start`` first.
    wait_for(lambda: datetime.now(UTC) > start, 1, "the clock to move past start")
    health.set("store", False, "still connecting")  # not ok -> not ok: same since
    assert since("store") == start
    assert health.snapshot()["components"]["store"]["detail"] == "still connecting"
    health.set("store", True, "sqlite")
    flipped = since("store")
    assert flipped > start
    wait_for(lambda: datetime.now(UTC) > flipped, 1, "the clock to move past flipped")
    health.set("store", True, "sqlite, 3 tables")
    assert since("store") == flipped
    health.set("store", False, "OperationalError")
    assert since("store") > flipped


def test_unknown_component_is_a_value_error():
    health = Health()
    with pytest.raises(ValueError, match="'kafka'"):
        health.set("kafka", True)
    assert set(health.snapshot()["components"]) == set(Health.COMPONENTS)


def test_detail_is_cut_to_a_bounded_length():
    health = Health()
    health.set("model", False, "x" * 10_000)
    assert health.snapshot()["components"]["model"]["detail"] == "x" * MAX_DETAIL_CHARS


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_liveness_timeout_must_be_positive(timeout):
    with pytest.raises(ValueError, match="liveness_timeout_s"):
        Health(liveness_timeout_s=timeout)


def test_liveness_follows_the_beat_on_the_given_clock():
    clock = FakeClock()
    health = Health(liveness_timeout_s=60, clock=clock)
    clock.now += 3600  # no beat yet: still starting, alive
    assert health.alive()
    health.beat()
    clock.now += 60
    assert health.alive()
    clock.now += 0.001
    assert not health.alive()
    assert health.snapshot()["alive"] is False
    health.beat()
    assert health.alive()


def test_snapshot_is_consistent_while_another_thread_flips_states():
    health = Health()
    stop = threading.Event()

    def flip() -> None:
        ok = True
        while not stop.is_set():
            for name in Health.COMPONENTS:
                health.set(name, ok)
            ok = not ok

    thread = threading.Thread(target=flip)
    thread.start()
    try:
        for _ in range(2000):
            snap = health.snapshot()
            oks = [c["ok"] for c in snap["components"].values()]
            assert snap["ready"] == all(oks)
    finally:
        stop.set()
        thread.join()


# --- gauges ------------------------------------------------------------------------------


def test_gauges_start_at_zero_and_follow_set():
    metrics = Metrics()
    health = Health(metrics=metrics)

    def up(name: str) -> float | None:
        return metrics.registry.get_sample_value("attnwatch_component_up", {"component": name})

    def ready() -> float | None:
        return metrics.registry.get_sample_value("attnwatch_ready")

    assert [up(n) for n in Health.COMPONENTS] == [0.0] * 4 and ready() == 0.0
    health.set("model", True)
    assert up("model") == 1.0 and up("store") == 0.0 and ready() == 0.0
    all_ok(health)
    assert [up(n) for n in Health.COMPONENTS] == [1.0] * 4 and ready() == 1.0
    health.set("assignment", False, "no partitions assigned")
    assert up("assignment") == 0.0 and ready() == 0.0


# --- HTTP --------------------------------------------------------------------------------


def test_healthz_is_200_while_beating_and_503_when_the_loop_stalls(served):
    _, health, clock, base = served
    assert get(f"{base}/healthz")[0] == 200
    health.beat()
    status, headers, body = get(f"{base}/healthz")
    assert (status, json.loads(body)) == (200, {"alive": True})
    assert headers["Content-Type"] == "application/json"
    clock.now += 31
    status, _, body = get(f"{base}/healthz")
    assert (status, json.loads(body)) == (503, {"alive": False})
    health.beat()
    assert get(f"{base}/healthz")[0] == 200


def test_readyz_is_503_until_every_component_is_ok_and_carries_the_snapshot(served):
    _, health, _, base = served
    status, headers, body = get(f"{base}/readyz")
    assert status == 503 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == health.snapshot()
    assert json.loads(body)["components"]["model"]["detail"] == NOT_REPORTED
    all_ok(health)
    status, _, body = get(f"{base}/readyz")
    assert status == 200
    assert json.loads(body)["ready"] is True
    health.set("broker", False, "connection refused")
    status, _, body = get(f"{base}/readyz")
    assert status == 503
    assert json.loads(body)["components"]["broker"]["detail"] == "connection refused"


def raw(base: str, request: bytes) -> bytes:
    """Everything the server sends back for ``request`` (HTTP/1.0: it then closes)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_head_probes_answer_the_status_without_a_body(served):
    _, health, _, base = served
    head = b"HEAD /readyz HTTP/1.0\r\n\r\n"
    # uvicorn answers an HTTP/1.0 request with its own version, 1.1, as RFC 9110 allows.
    reply = raw(base, head)
    assert reply.startswith(b"HTTP/1.1 503 ") and reply.endswith(b"\r\n\r\n")
    all_ok(health)
    reply = raw(base, head)
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"\r\n\r\n")


def test_probes_refuse_other_methods(served):
    _, _, _, base = served
    status, headers, _ = get(f"{base}/healthz", method="POST")
    assert status == 405 and "GET" in headers["Allow"]


def test_metrics_still_serves_the_registry_with_the_health_gauges(served):
    metrics, health, _, base = served
    metrics.messages.labels(topic="chat", outcome="enriched").inc(3)
    health.set("model", True)
    status, headers, body = get(f"{base}/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'attnwatch_messages_total{outcome="enriched",topic="chat"} 3.0' in text
    assert 'attnwatch_component_up{component="model"} 1.0' in text
    assert "attnwatch_ready 0.0" in text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept": "application/openmetrics-text; version=1.0.0"},
        {"Accept-Encoding": "gzip"},
    ],
    ids=["text", "openmetrics", "gzip"],
)
def test_metrics_answers_as_prometheus_clients_own_server(headers):
    """The replaced ``start_http_server``: same bytes and content type for each format."""
    metrics = Metrics()
    metrics.messages.labels(topic="news", outcome="dead_letter").inc()
    metrics.batch_size.observe(17)
    ours = metrics.serve(free_port(), health=Health(metrics=metrics))
    theirs, thread = start_http_server(free_port(), addr="127.0.0.1", registry=metrics.registry)
    try:
        mine = get(f"http://127.0.0.1:{ours}/metrics", **headers)
        reference = get(f"http://127.0.0.1:{theirs.server_port}/metrics", **headers)
    finally:
        metrics.close()
        theirs.shutdown()
        theirs.server_close()
        thread.join()
    assert mine[0] == reference[0] == 200
    for name in ("Content-Type", "Content-Encoding"):
        assert mine[1].get(name) == reference[1].get(name)
    assert mine[2] == reference[2]
    body = gzip.decompress(mine[2]) if "Accept-Encoding" in headers else mine[2]
    assert b"attnwatch_batch_size_count 1.0" in body


@pytest.mark.parametrize("path", ["/", "/metrics/extra", "/health", "/readyz/x"])
def test_unknown_paths_are_404(served, path):
    _, _, _, base = served
    assert get(f"{base}{path}")[0] == 404


def test_without_health_only_metrics_is_served():
    metrics = Metrics()
    port = metrics.serve(free_port())
    try:
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 404
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 404
    finally:
        metrics.close()


def test_a_stalled_client_does_not_block_probes(served):
    _, _, _, base = served
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as stalled:
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert get(f"{base}/healthz")[0] == 200
        assert time.monotonic() - started < 2


def test_port_in_use_is_a_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            Metrics().serve(port)


def test_close_frees_the_port_and_serve_can_start_again():
    metrics = Metrics()
    port = metrics.serve(free_port())
    with pytest.raises(RuntimeError, match="twice"):
        metrics.serve(free_port())
    metrics.close()
    metrics.close()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    assert metrics.serve(port) == port
    try:
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    finally:
        metrics.close()


def test_port_zero_binds_a_free_port():
    metrics = Metrics()
    port = metrics.serve(0)
    try:
        assert port > 0
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    finally:
        metrics.close()
