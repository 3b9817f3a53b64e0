"""Retrying transient faults (the store or Kafka away) with tenacity and capped backoff.

A failed flush or commit is retried, not fatal: the wait doubles from
``initial_s`` up to ``max_s``, with jitter so that several consumers restarting
together do not hammer a recovering database in lockstep (:class:`Backoff`).  Waiting
happens on a ``threading.Event``, so a shutdown interrupts it at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from pipeline.backoff import Backoff as Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


class Abandoned(Exception):
    """A retried operation gave up because the process is stopping."""


class _Stopping(Exception):
    """Raised out of tenacity's sleep when the stop event is set during a wait."""


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
    last: list[BaseException] = []

    def failed(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            last[:] = [exc]
            if on_failure is not None:
                on_failure(exc)

    def before_sleep(state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "transient failure; retrying",
            extra={
                "what": what,
                "error": f"{type(last[0]).__name__}: {last[0]}"[:500],
                "retry_in_s": round(wait, 2),
                "failures": backoff.failures,
            },
        )

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopping

    retrying = Retrying(
        retry=retry_if_exception_type(retriable),
        wait=lambda _state: backoff.next_wait(),
        after=failed,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        result = retrying(operation)
    except _Stopping:
        msg = f"{what}: stopping while retrying"
        raise Abandoned(msg) from last[0]
    backoff.reset()
    if on_success is not None:
        on_success()
    return result
