"""Capped exponential backoff and the retry helper."""

import threading

import pytest

from pipeline.backoff import capped_exponential_s
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


def test_capped_exponential_never_overflows_and_starts_at_zero():
    # tenacity's formula, shared by the outbox's due times: a fault lasting years stays capped.
    assert capped_exponential_s(0, 1.0, 60.0) == 0.0
    assert [capped_exponential_s(n, 1.0, 60.0) for n in (1, 2, 3, 7)] == [1.0, 2.0, 4.0, 60.0]
    assert capped_exponential_s(10**6, 1.0, 60.0) == 60.0


def test_a_stop_during_the_wait_abandons_without_another_try():
    stop = threading.Event()
    calls = []

    def away():
        calls.append(1)
        stop.set()  # the shutdown arrives while the first failure is being handled
        raise OSError("away")

    with pytest.raises(Abandoned) as abandoned:
        retry(away, what="t", retriable=(OSError,), stop=stop, backoff=Backoff(30.0, 30.0))
    assert calls == [1] and isinstance(abandoned.value.__cause__, OSError)
