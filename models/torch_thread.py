"""One OS thread for every torch computation a serving process makes.

Why: PyTorch runs its CPU kernels on an OpenMP pool, and once a *second* OS thread computes
with torch, every forward pass of the process gets slower.  Measured on the harness mix
(2,000 messages, default model, 2 torch threads, 2 cores; ``predict`` in batches of 64
messages, twice each, see decision 0024):

- everything (model load and forwards) in one thread, main or not: 213-216 msg/s;
- one 1000x1000 matmul in the main thread, then load and forwards in another: 179-185;
- the model loaded in the main thread, forwards in another (the run loop's shape until
  now: load in the main thread, classify in the classify thread, reloads in a loader
  thread): 162-184.

Explicit ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` did not close the gap (``ACTIVE`` made it
109 msg/s).  So the torch runtime loads, smoke-tests and runs its model here, whichever
thread asks: the polling thread, the classify thread and the reload thread all hand their
torch work to this one thread and wait for it.  Calls run one at a time, in order.

A call made from this thread runs at once (no dead-lock on nesting).  The thread is a daemon
started on first use, so a forward that never returns never blocks the process's exit; the
wait itself is bounded by whoever waits (the run loop abandons a batch after its timeout).
A child made by ``fork`` has none of its parent's threads: it starts a torch thread of its
own on first use instead of queueing work for one that is not there.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["TorchThread", "on_torch_thread", "shared"]

T = TypeVar("T")


class TorchThread:
    """A daemon thread that runs submitted functions one at a time (see the module docstring).

    Not a ``ThreadPoolExecutor(max_workers=1)``: its worker is not a daemon (the interpreter
    joins it at exit, so a forward that never returns would hang the exit), a call from its
    own worker would wait for itself, and a forked child inherits a pool that believes its
    worker is running.  The results travel in ``concurrent.futures.Future``.
    """

    def __init__(self, name: str = "torch") -> None:
        self._name = name
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def ident(self) -> int | None:
        """The thread's id once started (tests check where work ran)."""
        return None if self._thread is None else self._thread.ident

    def call(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the torch thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return work()
        future: Future[T] = Future()
        self._start()
        self._calls.put((work, future))
        return future.result()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            work, future = self._calls.get()
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                future.set_exception(exc)

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's thread, queue and lock are not ours."""
        self._calls = queue.SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()


#: The process's torch thread.
shared = TorchThread()
os.register_at_fork(after_in_child=shared._forget_after_fork)  # noqa: SLF001


def on_torch_thread(work: Callable[[], T]) -> T:
    """``shared.call(work)``."""
    return shared.call(work)
