"""Capped exponential backoff for transient faults (the store or Kafka away).

A failed flush or commit is retried, not fatal: the wait doubles from
``initial_s`` up to ``max_s``, with jitter so that several consumers restarting
together do not hammer a recovering database in lockstep.  Waiting happens on a
``threading.Event``, so a shutdown interrupts it at once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backoff:
    """The next wait: ``initial_s * 2**n`` capped at ``max_s``, +/- 20% jitter."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0) -> None:
        if not 0 < initial_s <= max_s:
            msg = f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}"
            raise ValueError(msg)
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0

    def next_wait(self) -> float:
        """The wait after one more failure."""
        base = min(self.max_s, self.initial_s * 2 ** min(self.failures, 30))
        self.failures += 1
        jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        return float(base * jitter)

    def reset(self) -> None:
        """Forget the failures (after a success)."""
        self.failures = 0


class Abandoned(Exception):
    """A retried operation gave up because the process is stopping."""


def retry(
    operation: Callable[[], T],
    *,
    what: str,
    retriable: tuple[type[BaseException], ...],
    stop: threading.Event,
    backoff: Backoff,
    on_failure: Callable[[BaseException], None] | None = None,
    on_success: Callable[[], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds; wait between tries; raise :class:`Abandoned` on stop.

    Exceptions outside ``retriable`` propagate at once (they are bugs, not faults).
    """
    while True:
        try:
            result = operation()
        except retriable as exc:
            if on_failure is not None:
                on_failure(exc)
            wait = backoff.next_wait()
            log.warning(
                "transient failure; retrying",
                extra={"what": what, "error": f"{type(exc).__name__}: {exc}"[:500],
                       "retry_in_s": round(wait, 2), "failures": backoff.failures},
            )
            if stop.wait(wait):
                msg = f"{what}: stopping while retrying"
                raise Abandoned(msg) from exc
            continue
        backoff.reset()
        if on_success is not None:
            on_success()
        return result
