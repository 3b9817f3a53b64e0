"""Wait on a condition with a bound, instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: First poll interval and the cap the interval doubles up to.
FIRST_INTERVAL_S = 0.005
MAX_INTERVAL_S = 0.2


def wait_for(
    condition: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    max_interval_s: float = MAX_INTERVAL_S,
) -> T:
    """Return the first truthy ``condition()`` within ``timeout_s``; fail naming ``what``.

    Polls at once, then with a doubling interval from 5 ms up to ``max_interval_s``, so a
    condition that is already true costs nothing and a slow one costs few polls.  The
    condition runs once more at the deadline, so a bound that is just long enough passes.
    Raises ``AssertionError`` (a test failure, with ``what`` in it) on timeout.
    """
    deadline = time.monotonic() + timeout_s
    interval = FIRST_INTERVAL_S
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
        interval = min(interval * 2, max_interval_s)
    message = f"not within {timeout_s} s: {what}"
    raise AssertionError(message)
