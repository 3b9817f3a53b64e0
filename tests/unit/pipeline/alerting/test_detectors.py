"""Shift and drift detectors on seeded synthetic streams."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.alerting.detectors import (
    DriftDetector,
    DriftSettings,
    Opened,
    Resolved,
    ShiftDetector,
    ShiftSettings,
    two_proportion_z,
    upper_p_value,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PER_SLOT = 3  # events per 15-s evaluation: 12 per minute
CURRENT_SLOTS = 60  # 15 minutes
BASELINE_SLOTS = 5760  # 24 hours


def run(
    shares: list[float], rng: random.Random, detector: ShiftDetector
) -> list[tuple[int, Opened | Resolved]]:
    """Feed a stream (one negative share per 15-s slot) to ``detector``, evaluating every slot.

    Returns ``(events so far, decision)`` for every decision.
    """
    cum = [0]
    decisions: list[tuple[int, Opened | Resolved]] = []
    for t, p in enumerate(shares, start=1):
        cum.append(cum[-1] + sum(rng.random() < p for _ in range(PER_SLOT)))
        first = max(0, t - CURRENT_SLOTS)
        base_first = max(0, first - BASELINE_SLOTS)
        result = detector.evaluate(
            T0 + timedelta(seconds=15 * t),
            cum[t] - cum[first],
            (t - first) * PER_SLOT,
            cum[first] - cum[base_first],
            (first - base_first) * PER_SLOT,
        )
        if result is not None:
            decisions.append((t * PER_SLOT, result))
    return decisions


def test_z_matches_the_pooled_formula() -> None:
    # 60/100 against 300/1000: pooled 360/1100, SE sqrt(p(1-p)(1/100 + 1/1000)).
    pooled = 360 / 1100
    expected = 0.3 / math.sqrt(pooled * (1 - pooled) * 0.011)
    assert two_proportion_z(60, 100, 300, 1000) == pytest.approx(expected)
    assert two_proportion_z(60, 100, 300, 1000) == pytest.approx(6.0964, abs=1e-3)
    assert two_proportion_z(20, 100, 300, 1000) < 0  # one-sided: a fall is negative
    assert two_proportion_z(0, 0, 300, 1000) == 0.0
    assert two_proportion_z(0, 50, 0, 1000) == 0.0  # no negatives anywhere: no variance
    assert upper_p_value(1.959964) == pytest.approx(0.025, abs=1e-6)


def test_no_alert_on_stationary_streams_across_20_scopes() -> None:
    rng = random.Random(11)
    opened = 0
    for _ in range(20):
        decisions = run([0.3] * (10_000 // PER_SLOT), rng, ShiftDetector())
        opened += sum(isinstance(d, Opened) for _, d in decisions)
    assert opened == 0


def test_a_step_from_30_to_60_percent_is_detected_within_200_events() -> None:
    rng = random.Random(12)
    change = 2000  # slots: 6,000 events of warm-up
    decisions = run([0.3] * change + [0.6] * 400, rng, ShiftDetector())
    assert decisions, "the shift was never detected"
    events_at, first = decisions[0]
    assert isinstance(first, Opened)
    assert 0 < events_at - change * PER_SLOT <= 200
    assert first.evidence.z >= ShiftSettings().z_open
    assert first.evidence.current_share - first.evidence.baseline_share >= 0.10


def test_a_burst_that_ends_gives_one_opened_and_one_resolved() -> None:
    rng = random.Random(13)
    shares = [0.3] * 2000 + [0.7] * 80 + [0.3] * 1000
    decisions = run(shares, rng, ShiftDetector())
    kinds = [type(d) for _, d in decisions]
    assert kinds == [Opened, Resolved]
    opened, resolved = decisions[0][1], decisions[1][1]
    assert isinstance(opened, Opened) and isinstance(resolved, Resolved)
    assert resolved.started == opened.at
    # Resolved only once the burst has left the 15-minute window.
    assert resolved.at >= T0 + timedelta(seconds=15 * (2080 + CURRENT_SLOTS))
    assert resolved.evidence.z < 1.5


def test_min_volume_guards() -> None:
    detector = ShiftDetector(ShiftSettings(min_current=30, min_baseline=200))
    # All negative against 10% but only 29 current events: no alert.
    assert detector.evaluate(T0, 29, 29, 100, 1000) is None
    # Enough current events, baseline too small.
    assert detector.evaluate(T0, 30, 30, 19, 199) is None
    assert isinstance(detector.evaluate(T0, 30, 30, 20, 200), Opened)


def test_min_delta_guard_on_huge_volumes() -> None:
    # z is enormous on a million events, but 30% -> 35% is under min_delta.
    detector = ShiftDetector()
    assert two_proportion_z(350_000, 1_000_000, 3_000_000, 10_000_000) > 4
    assert detector.evaluate(T0, 350_000, 1_000_000, 3_000_000, 10_000_000) is None


def test_resolve_needs_consecutive_calm_evaluations_then_cools_down() -> None:
    detector = ShiftDetector(ShiftSettings(resolve_after=3, cooldown_s=600))
    at = [T0 + timedelta(seconds=15 * i) for i in range(100)]
    assert isinstance(detector.evaluate(at[0], 60, 100, 300, 1000), Opened)
    assert detector.evaluate(at[1], 30, 100, 300, 1000) is None  # calm 1
    assert detector.evaluate(at[2], 30, 100, 300, 1000) is None  # calm 2
    assert detector.evaluate(at[3], 60, 100, 300, 1000) is None  # high again: count restarts
    assert detector.evaluate(at[4], 30, 100, 300, 1000) is None
    assert detector.evaluate(at[5], 30, 100, 300, 1000) is None
    resolved = detector.evaluate(at[6], 30, 100, 300, 1000)
    assert isinstance(resolved, Resolved) and resolved.started == at[0]
    # Cool-down: 600 s = 40 evaluations with no new episode, then one.
    assert detector.evaluate(at[7], 60, 100, 300, 1000) is None
    assert detector.evaluate(at[45], 60, 100, 300, 1000) is None
    assert isinstance(detector.evaluate(at[46], 60, 100, 300, 1000), Opened)


def test_an_episode_on_a_scope_that_falls_silent_resolves() -> None:
    detector = ShiftDetector()
    assert isinstance(detector.evaluate(T0, 60, 100, 300, 1000), Opened)
    results = [detector.evaluate(T0 + timedelta(seconds=i), 0, 0, 300, 1000) for i in (1, 2, 3)]
    assert results[:2] == [None, None] and isinstance(results[2], Resolved)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="z_close"):
        ShiftSettings(z_open=2.0, z_close=2.0)
    with pytest.raises(ValueError, match="at least 1"):
        ShiftSettings(min_current=0)


def drift_stream(shares: list[float], n: int, seed: int) -> list[int | None]:
    """Feed one bucket per share; return the indices of the buckets where drift fired."""
    rng = random.Random(seed)
    detector = DriftDetector()
    fired: list[int | None] = []
    for i, p in enumerate(shares):
        negative = sum(rng.random() < p for _ in range(n))
        if detector.update(T0 + timedelta(minutes=i), negative, n) is not None:
            fired.append(i)
    return fired


def test_drift_detector_is_quiet_on_stationary_buckets() -> None:
    assert drift_stream([0.3] * 3 * 1440, 12, seed=21) == []


def test_drift_detector_sees_a_gradual_rise() -> None:
    ramp = [0.3 + 0.3 * min(1.0, i / 360) for i in range(720)]  # 30% -> 60% over 6 h
    fired = drift_stream([0.3] * 600 + ramp, 12, seed=22)
    assert fired and 600 < (fired[0] or 0) < 600 + 360


def test_drift_detector_feeds_each_bucket_once_and_skips_thin_ones() -> None:
    detector = DriftDetector(DriftSettings(min_buckets=1, threshold=0.4, delta=0.0))
    assert detector.update(T0, 0, 10) is None
    # The same bucket again (a later evaluation) and an older one are ignored.
    assert detector.update(T0, 10, 10) is None
    assert detector.update(T0 - timedelta(minutes=1), 10, 10) is None
    assert detector.update(T0 + timedelta(minutes=1), 4, 4) is None  # under min_bucket_n
    drifted = detector.update(T0 + timedelta(minutes=2), 10, 10)
    assert drifted is not None and drifted.share == 1.0 and drifted.mean_before == 0.0
