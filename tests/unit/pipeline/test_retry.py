"""Capped exponential backoff and the retry helper."""

import threading

import pytest

from pipeline.stream.retry import Abandoned, Backoff, retry


def test_backoff_doubles_up_to_the_cap_with_jitter():
    backoff = Backoff(0.5, 4.0)
    waits = [backoff.next_wait() for _ in range(8)]
    bases = [0.5, 1, 2, 4, 4, 4, 4, 4]
    for wait, base in zip(waits, bases):
        assert 0.8 * base <= wait <= 1.2 * base
    backoff.reset()
    assert backoff.next_wait() <= 0.6


def test_retry_returns_after_transient_failures_and_resets():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("away")
        return "ok"

    backoff = Backoff(0.001, 0.002)
    failures = []
    assert retry(flaky, what="t", retriable=(OSError,), stop=threading.Event(),
                 backoff=backoff, on_failure=failures.append) == "ok"
    assert len(calls) == 3 and len(failures) == 2 and backoff.failures == 0


def test_retry_does_not_swallow_bugs_and_stops_on_request():
    def bug():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry(bug, what="t", retriable=(OSError,), stop=threading.Event(), backoff=Backoff())
    stop = threading.Event()
    stop.set()

    def away():
        raise OSError("away")

    with pytest.raises(Abandoned):
        retry(away, what="t", retriable=(OSError,), stop=stop, backoff=Backoff(0.001, 0.001))


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(0, 1)
