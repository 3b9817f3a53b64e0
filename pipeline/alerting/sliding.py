"""A stream's current window and baseline, slid one closed bucket at a time.

The evaluator steps through event time bucket by bucket (a backlog of hours is evaluated as
it would have been live).  Summing the whole baseline again at every step would cost one
pass over ``baseline_s / bucket_s`` buckets per scope and step (1,440 for a day); here each
bucket is added once when it enters the current window, moved once to the baseline and taken
out once when it leaves it, so a step costs O(scopes).  Memory is the buckets of one
baseline and current window per scope: bounded by the window, whatever the backlog.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.alerting.windows import Bucket, Comparison, ScopeKey, Window


@dataclass
class _Scope:
    current: deque[Bucket] = field(default_factory=deque)
    baseline: deque[Bucket] = field(default_factory=deque)
    sums: Comparison = field(default_factory=Comparison)


class Sliding:
    """Each scope's :class:`Comparison` at the bucket last passed to :meth:`advance`.

    Buckets must come in event-time order (a bucket older than the last one is refused);
    the comparison at bucket start ``t`` is what :meth:`Window.compare` gives at ``t``.
    """

    def __init__(self, window: Window) -> None:
        self._window = window
        self._scopes: dict[ScopeKey, _Scope] = {}
        self._at: datetime | None = None

    @property
    def at(self) -> datetime | None:
        """Start of the last bucket advanced to (``None`` before the first)."""
        return self._at

    def advance(self, at: datetime, buckets: Iterable[Bucket]) -> dict[ScopeKey, Comparison]:
        """Add ``buckets`` (all starting at or before ``at``), slide to ``at``, return sums."""
        if self._at is not None and at < self._at:
            msg = f"cannot slide back from {self._at.isoformat()} to {at.isoformat()}"
            raise ValueError(msg)
        self._at = at
        for bucket in buckets:
            if bucket.start > at:
                msg = f"bucket at {bucket.start.isoformat()} is after {at.isoformat()}"
                raise ValueError(msg)
            scope = self._scopes.setdefault(bucket.key, _Scope())
            scope.current.append(bucket)
            scope.sums.current.add(bucket)
        current_start = self._window.current_start(at)
        baseline_start = current_start - timedelta(seconds=self._window.baseline_s)
        empty: list[ScopeKey] = []
        for key, scope in self._scopes.items():
            while scope.current and scope.current[0].start < current_start:
                moved = scope.current.popleft()
                scope.sums.current.remove(moved)
                scope.baseline.append(moved)
                scope.sums.baseline.add(moved)
            while scope.baseline and scope.baseline[0].start < baseline_start:
                scope.sums.baseline.remove(scope.baseline.popleft())
            if not scope.current and not scope.baseline:
                empty.append(key)
        for key in empty:
            del self._scopes[key]
        return {key: scope.sums for key, scope in self._scopes.items()}

    def buckets(self) -> int:
        """Buckets held (for the memory bound)."""
        return sum(len(s.current) + len(s.baseline) for s in self._scopes.values())
