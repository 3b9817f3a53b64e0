"""Detectors of sentiment shifts: pure state machines over window counts, no I/O.

- :class:`ShiftDetector`: a one-sided two-proportion z-test of the current window's
  negative share against the baseline's (:func:`two_proportion_z`), with an episode
  state machine: one :class:`Opened` when the shift is large and certain enough, one
  :class:`Resolved` after it stays below a lower threshold, then a cool-down.
- :class:`DriftDetector`: River's Page-Hinkley test over the per-bucket negative
  share of closed buckets, for gradual drift the window comparison is slow to see.

Defaults come from ``bench/alert_calibration.py`` (200 stationary scope-days and 20
change-point streams per rate, at 4, 12 and 40 events per minute per scope).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from river.drift import PageHinkley


def two_proportion_z(cur_neg: int, cur_n: int, base_neg: int, base_n: int) -> float:
    """Z statistic of "the current negative share is above the baseline's" (pooled SE).

    Positive when the current share is higher; 0 when either side is empty or the
    pooled share is 0 or 1 (no variance: nothing to test).  One-sided p-value:
    :func:`upper_p_value`.
    """
    if cur_n <= 0 or base_n <= 0:
        return 0.0
    pooled = (cur_neg + base_neg) / (cur_n + base_n)
    variance = pooled * (1.0 - pooled) * (1.0 / cur_n + 1.0 / base_n)
    if variance <= 0.0:
        return 0.0
    return (cur_neg / cur_n - base_neg / base_n) / math.sqrt(variance)


def upper_p_value(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class ShiftSettings:
    """Thresholds of :class:`ShiftDetector`.

    An episode opens when the current window has at least ``min_current`` events, the
    baseline at least ``min_baseline``, ``z >= z_open`` and the negative share rose by
    at least ``min_delta`` (absolute); it resolves after ``resolve_after`` consecutive
    evaluations with ``z < z_close`` (or too few events to tell); no new episode opens
    for ``cooldown_s`` after that.
    """

    # 5, not 4: z_open=4 raised 0.075 false alarms per scope per day at 4 and 12 events/min
    # (the binomial's upper tail is heavier than the normal's at these counts); 5 raised
    # 0.005 at every rate and still caught a 30% -> 60% step within 11.2 min (135 events)
    # at 12/min, 42 min (168 events) at 4/min.
    z_open: float = 5.0
    z_close: float = 1.5
    min_current: int = 30
    min_baseline: int = 200
    min_delta: float = 0.10
    resolve_after: int = 3
    cooldown_s: float = 900.0

    def __post_init__(self) -> None:
        if self.z_close >= self.z_open:
            msg = f"z_close ({self.z_close}) must be below z_open ({self.z_open})"
            raise ValueError(msg)
        if self.min_current < 1 or self.min_baseline < 1 or self.resolve_after < 1:
            msg = "min_current, min_baseline and resolve_after must be at least 1"
            raise ValueError(msg)
        if not 0.0 <= self.min_delta < 1.0 or self.cooldown_s < 0:
            msg = "min_delta must be in [0, 1) and cooldown_s non-negative"
            raise ValueError(msg)


@dataclass(frozen=True)
class Evidence:
    """The test behind a decision: the statistic, both shares and the counts."""

    z: float
    current_share: float
    baseline_share: float
    current_negative: int
    current_n: int
    baseline_negative: int
    baseline_n: int


def counts_evidence(cur_neg: int, cur_n: int, base_neg: int, base_n: int) -> Evidence:
    """The z-test of the current window's counts against the baseline's."""
    return Evidence(
        z=two_proportion_z(cur_neg, cur_n, base_neg, base_n),
        current_share=cur_neg / cur_n if cur_n else 0.0,
        baseline_share=base_neg / base_n if base_n else 0.0,
        current_negative=cur_neg,
        current_n=cur_n,
        baseline_negative=base_neg,
        baseline_n=base_n,
    )


@dataclass(frozen=True)
class Opened:
    """An episode started at ``at`` (its id, with the scope, in the alerts table).

    ``detector`` says what opened it: the window test (``two_proportion_z``) or the
    sequential drift detector (``page_hinkley``).
    """

    at: datetime
    evidence: Evidence
    detector: str = "two_proportion_z"


@dataclass(frozen=True)
class Resolved:
    """The episode that started at ``started`` is over as of ``at``."""

    at: datetime
    started: datetime
    evidence: Evidence


class ShiftDetector:
    """Episode state machine of one scope over the z-test; feed it every evaluation."""

    def __init__(self, settings: ShiftSettings | None = None) -> None:
        self.settings = settings or ShiftSettings()
        self._open_since: datetime | None = None
        #: The test of the latest evaluation (for gauges), ``None`` before the first.
        self.last: Evidence | None = None
        self._calm = 0
        self._quiet_until: datetime | None = None

    @property
    def open_since(self) -> datetime | None:
        """When the current episode opened, or ``None`` when there is none."""
        return self._open_since

    def resume(self, started: datetime) -> None:
        """Continue an episode recorded as firing (after a restart or a lease hand-over)."""
        self._open_since, self._calm = started, 0

    def state(self) -> dict[str, Any]:
        """The state machine as JSON-able values (saved in the store between steps)."""
        return {
            "open_since": _iso(self._open_since),
            "calm": self._calm,
            "quiet_until": _iso(self._quiet_until),
            "last": asdict(self.last) if self.last is not None else None,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a :meth:`state` (after a restart or a lease hand-over)."""
        self._open_since = _time(state.get("open_since"))
        self._calm = int(state.get("calm", 0))
        self._quiet_until = _time(state.get("quiet_until"))
        last = state.get("last")
        self.last = Evidence(**last) if last else None

    def shows_shift(self, evidence: Evidence) -> bool:
        """Whether ``evidence`` passes the opening rule (volumes, ``z_open``, ``min_delta``)."""
        s = self.settings
        return (
            evidence.current_n >= s.min_current
            and evidence.baseline_n >= s.min_baseline
            and evidence.z >= s.z_open
            and evidence.current_share - evidence.baseline_share >= s.min_delta
        )

    def evaluate(
        self,
        now: datetime,
        cur_neg: int,
        cur_n: int,
        base_neg: int,
        base_n: int,
        *,
        drifted: bool = False,
    ) -> Opened | Resolved | None:
        """Update with one evaluation's counts; return what changed, if anything.

        ``drifted``: the scope's :class:`DriftDetector` signalled since the last call.  It
        opens an episode too (given the minimum volumes), one that ends by the same rule
        as a shift: once the current window is no longer above the baseline.
        """
        s = self.settings
        evidence = counts_evidence(cur_neg, cur_n, base_neg, base_n)
        self.last = evidence
        enough = cur_n >= s.min_current and base_n >= s.min_baseline
        if self._open_since is not None:
            # Too few events to tell counts as calm: an episode on a scope that fell
            # silent must still end.
            if enough and evidence.z >= s.z_close:
                self._calm = 0
                return None
            self._calm += 1
            if self._calm < s.resolve_after:
                return None
            started, self._open_since = self._open_since, None
            self._quiet_until = now + timedelta(seconds=s.cooldown_s)
            return Resolved(at=now, started=started, evidence=evidence)
        if self._quiet_until is not None and now < self._quiet_until:
            return None
        if self.shows_shift(evidence):
            self._open_since, self._calm = now, 0
            return Opened(at=now, evidence=evidence)
        if drifted and enough:
            self._open_since, self._calm = now, 0
            return Opened(at=now, evidence=evidence, detector="page_hinkley")
        return None


@dataclass(frozen=True)
class DriftSettings:
    """Settings of :class:`DriftDetector` (River ``PageHinkley``, mode ``up``).

    ``delta`` is the rise of the per-bucket negative share ignored as noise,
    ``threshold`` the cumulative excess that signals drift (both in share units);
    buckets with fewer than ``min_bucket_n`` events are skipped (their share is noise),
    and nothing is signalled before ``min_buckets`` buckets have been seen.
    """

    # lambda=4: no false alarm in 200 scope-days at any rate (lambda=1: 1.2 per scope per
    # day at 12/min); a 6-hour ramp 30% -> 60% seen after 148 min median at 12/min, sooner
    # than the z-test's 165.
    delta: float = 0.05
    threshold: float = 4.0
    min_buckets: int = 30
    min_bucket_n: int = 5
    alpha: float = 1.0 - 1e-4


@dataclass(frozen=True)
class Drifted:
    """The negative share drifted up; detected at the bucket starting ``at``."""

    at: datetime
    share: float
    mean_before: float


class DriftDetector:
    """Page-Hinkley over one scope's closed buckets, each fed once, in event-time order.

    Page-Hinkley rather than ADWIN: it can watch one direction (a rise of the negative
    share; ADWIN flags any change, improvements too), and its threshold is in share
    units, calibrated directly in ``bench/alert_calibration.py``.
    """

    def __init__(self, settings: DriftSettings | None = None) -> None:
        self.settings = settings or DriftSettings()
        self._detector = self._new()
        self._last: datetime | None = None
        self._sum = 0.0
        self._count = 0

    def _new(self) -> PageHinkley:
        s = self.settings
        return PageHinkley(
            min_instances=s.min_buckets, delta=s.delta, threshold=s.threshold, alpha=s.alpha,
            mode="up",
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Page-Hinkley's running sums and our own, as JSON-able values.

        River 0.26 keeps them in private attributes; ``test_detectors`` checks that a
        restored detector goes on exactly as the original (so an upgrade that renames them
        fails there, not silently).
        """
        ph = self._detector
        return {
            "last": _iso(self._last),
            "sum": self._sum,
            "count": self._count,
            "ph": {
                "drift": ph._drift_detected,
                "n": ph._x_mean.n,
                "mean": ph._x_mean._mean,
                "sum_increase": ph._sum_increase,
                "sum_decrease": ph._sum_decrease,
                "min_increase": ph._min_increase,
                "max_decrease": ph._max_decrease,
            },
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a :meth:`state`."""
        self._last = _time(state.get("last"))
        self._sum = float(state.get("sum", 0.0))
        self._count = int(state.get("count", 0))
        self._detector = self._new()
        saved = state.get("ph")
        if saved:
            ph = self._detector
            ph._drift_detected = bool(saved["drift"])
            ph._x_mean.n = saved["n"]
            ph._x_mean._mean = float(saved["mean"])
            ph._sum_increase = float(saved["sum_increase"])
            ph._sum_decrease = float(saved["sum_decrease"])
            ph._min_increase = float(saved["min_increase"])
            ph._max_decrease = saved["max_decrease"]  # River starts it as -1 (an int)

    def update(self, start: datetime, negative: int, n: int) -> Drifted | None:
        """Feed one closed bucket; buckets at or before the last one fed are ignored."""
        if self._last is not None and start <= self._last:
            return None
        self._last = start
        if n < self.settings.min_bucket_n:
            return None
        share = negative / n
        mean_before = self._sum / self._count if self._count else share
        # River 0.26.1 leaves update() unannotated.
        self._detector.update(share)  # type: ignore[no-untyped-call]
        self._sum += share
        self._count += 1
        if not self._detector.drift_detected:
            return None
        # PageHinkley starts over by itself on its next update; so does the mean we report.
        self._sum, self._count = 0.0, 0
        return Drifted(at=start, share=share, mean_before=mean_before)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
