"""The run loop's classify thread: one thread for every batch, a new one after a stuck batch."""

from __future__ import annotations

import threading

import pytest

from pipeline.stream.runner import _ClassifyThread
from tests.support.waiting import wait_for

pytestmark = pytest.mark.unit


def test_batches_run_in_order_on_one_thread_and_errors_come_back() -> None:
    worker = _ClassifyThread()
    seen: list[int] = []

    def fail() -> None:
        raise ValueError("model broke")

    first = worker.submit(lambda: seen.append(threading.get_ident()))
    second = worker.submit(lambda: seen.append(threading.get_ident()))
    broken = worker.submit(fail)
    assert first.wait(5) and second.wait(5) and broken.wait(5)
    assert len(seen) == 2 and seen[0] == seen[1] != threading.get_ident()
    assert first.error is None and isinstance(broken.error, ValueError)
    assert worker.idle
    worker.retire()
    wait_for(lambda: not worker._thread.is_alive(), 5, "the retired thread to end")  # noqa: SLF001


def test_a_stuck_batch_keeps_its_thread_busy() -> None:
    worker = _ClassifyThread()
    release = threading.Event()
    stuck = worker.submit(lambda: release.wait(10))
    assert not stuck.wait(0.05)
    assert not worker.idle  # the runner starts a new thread for the next batch
    release.set()
    assert stuck.wait(5) and worker.idle
    worker.retire()
