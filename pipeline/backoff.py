"""Capped exponential backoff, from tenacity's ``wait_exponential``, in one place.

Two callers: the run loop's retries of transient faults (:mod:`pipeline.stream.retry`, which
waits) and the notification outbox (:mod:`pipeline.store.outbox`, which stores a due time).
Both use tenacity's formula: ``base_s * 2**(failures - 1)`` capped at ``max_s``, safe from
float overflow however long a fault lasts.
"""

from __future__ import annotations

import random

from tenacity import RetryCallState, Retrying, wait_exponential

# tenacity's wait strategies read only the attempt number of the call state they are given.
_RETRYING = Retrying()


def capped_exponential_s(failures: int, base_s: float, max_s: float) -> float:
    """Delay after ``failures`` failed attempts: 0, then ``base_s``, 2x, 4x, ... up to ``max_s``."""
    if failures < 1:
        return 0.0
    state = RetryCallState(_RETRYING, fn=None, args=(), kwargs={})
    state.attempt_number = failures
    return float(wait_exponential(multiplier=base_s, max=max_s)(state))


class Backoff:
    """The next wait: ``initial_s * 2**n`` capped at ``max_s``, +/- 20% jitter.

    Kept as an object with a failure count (not only a tenacity ``wait``) because the run
    loop also retries commits *between* batches, asking only for the next due time.  The
    jitter multiplies (tenacity's ``wait_exponential_jitter`` adds up to a fixed amount), so
    consumers restarting together spread out by a fifth of the wait at every step.
    """

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0) -> None:
        if not 0 < initial_s <= max_s:
            msg = f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}"
            raise ValueError(msg)
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0

    def next_wait(self) -> float:
        """The wait after one more failure."""
        self.failures += 1
        base = capped_exponential_s(self.failures, self.initial_s, self.max_s)
        jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        return base * jitter

    def reset(self) -> None:
        """Forget the failures (after a success)."""
        self.failures = 0
