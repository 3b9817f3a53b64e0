"""Calibrate the sentiment-shift detectors on synthetic streams.

Each scope receives events at a fixed rate (``rate`` per minute, spread evenly over
15-second slots), each negative with probability ``p``; they fill 1-minute buckets and
the detectors are evaluated every 15 s of event time, exactly as the evaluator does:
:class:`~pipeline.alerting.detectors.ShiftDetector` on the current 15-minute window
(open bucket included) against the 24-hour baseline before it, and
:class:`~pipeline.alerting.detectors.DriftDetector` on each bucket once it is closed
(2 minutes' lateness).  Reported per setting and rate:

- false alarms per scope per day on stationary streams (30% negative), after a day of
  warm-up so the baseline is full;
- detection delay (minutes and events after the change) for a step 30% -> 60% and for
  a linear ramp 30% -> 60% over 6 hours; "miss" when nothing fired within 12 hours.

Usage: ``python bench/alert_calibration.py [--scope-days 200] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from pipeline.alerting.detectors import (
    DriftDetector,
    DriftSettings,
    Opened,
    ShiftDetector,
    ShiftSettings,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SLOT_S = 15
SLOTS_PER_BUCKET = 4
CURRENT_BUCKETS = 15
BASELINE_BUCKETS = 1440
LATENESS_SLOTS = 8  # 120 s
#: Delays to the live detection (bucket close + lateness); ``--path event-time`` reports
#: event-time delays (to the end of the deciding bucket) for both detectors.
LIVE_DELAYS = True
WARMUP_SLOTS = (BASELINE_BUCKETS + CURRENT_BUCKETS) * SLOTS_PER_BUCKET
SLOTS_PER_DAY = 86_400 // SLOT_S
BASE_P = 0.30
SHIFTED_P = 0.60


def negatives(rng: np.random.Generator, per_slot: int, p: np.ndarray) -> np.ndarray:
    """Negative events per 15-s slot."""
    return rng.binomial(per_slot, p)


def run_shift(
    neg: np.ndarray, per_slot: int, settings: ShiftSettings, start_slot: int
) -> list[int]:
    """Slots (end of) at which ShiftDetector opened an episode, from ``start_slot`` on."""
    cum = np.concatenate(([0], np.cumsum(neg)))
    detector = ShiftDetector(settings)
    opened: list[int] = []
    for t in range(start_slot, len(neg) + 1):
        # now = end of slot t-1; the bucket holding it starts at slot (t // 4) * 4.
        first = (t // SLOTS_PER_BUCKET - (CURRENT_BUCKETS - 1)) * SLOTS_PER_BUCKET
        base_first = first - BASELINE_BUCKETS * SLOTS_PER_BUCKET
        cur_neg = int(cum[t] - cum[first])
        base_neg = int(cum[first] - cum[base_first])
        now = T0 + timedelta(seconds=t * SLOT_S)
        result = detector.evaluate(
            now, cur_neg, (t - first) * per_slot, base_neg, (first - base_first) * per_slot
        )
        if isinstance(result, Opened):
            opened.append(t)
    return opened


def run_shift_closed(
    neg: np.ndarray, per_slot: int, settings: ShiftSettings, start_slot: int
) -> list[int]:
    """The event-time path: evaluated once per closed bucket, the window being the 15
    closed buckets ending with it (``Evaluator`` since issue 24, live or catching up alike).

    Returns the slots (end of the deciding bucket, event time) at which an episode opened.
    """
    per_bucket = neg[: len(neg) // SLOTS_PER_BUCKET * SLOTS_PER_BUCKET].reshape(-1, 4).sum(1)
    cum = np.concatenate(([0], np.cumsum(per_bucket)))
    n = per_slot * SLOTS_PER_BUCKET
    detector = ShiftDetector(settings)
    opened: list[int] = []
    for b in range(start_slot // SLOTS_PER_BUCKET, len(per_bucket)):
        first = b - (CURRENT_BUCKETS - 1)
        base_first = first - BASELINE_BUCKETS
        cur_neg = int(cum[b + 1] - cum[first])
        base_neg = int(cum[first] - cum[base_first])
        result = detector.evaluate(
            T0 + timedelta(minutes=b), cur_neg, CURRENT_BUCKETS * n, base_neg,
            BASELINE_BUCKETS * n,
        )  # fmt: skip
        if isinstance(result, Opened):
            opened.append((b + 1) * SLOTS_PER_BUCKET)
    return opened


def run_drift(
    neg: np.ndarray, per_slot: int, settings: DriftSettings, start_slot: int
) -> list[int]:
    """Slots at which DriftDetector signalled (when the bucket closed), from ``start_slot``."""
    per_bucket = neg[: len(neg) // SLOTS_PER_BUCKET * SLOTS_PER_BUCKET].reshape(-1, 4).sum(1)
    n = per_slot * SLOTS_PER_BUCKET
    detector = DriftDetector(settings)
    fired: list[int] = []
    for b, count in enumerate(per_bucket):
        closed_at = (b + 1) * SLOTS_PER_BUCKET + (LATENESS_SLOTS if LIVE_DELAYS else 0)
        start = T0 + timedelta(minutes=b)
        if detector.update(start, int(count), n) is not None and closed_at >= start_slot:
            fired.append(closed_at)
    return fired


Runner = Callable[[np.ndarray, int, object, int], list[int]]


def false_alarms(runner: Runner, settings: object, rate: int, scope_days: int, seed: int) -> float:
    """Alerts per scope per day on stationary streams."""
    rng = np.random.default_rng(seed)
    per_slot = rate // 4
    days_per_stream = 5
    alarms = 0
    for _ in range(max(1, scope_days // days_per_stream)):
        p = np.full(WARMUP_SLOTS + days_per_stream * SLOTS_PER_DAY, BASE_P)
        alarms += len(runner(negatives(rng, per_slot, p), per_slot, settings, WARMUP_SLOTS))
    return alarms / (max(1, scope_days // days_per_stream) * days_per_stream)


def delays(
    runner: Runner, settings: object, rate: int, ramp_slots: int, streams: int, seed: int
) -> list[float]:
    """Minutes from the change to the first alert, per stream (inf when missed)."""
    rng = np.random.default_rng(seed)
    per_slot = rate // 4
    change = WARMUP_SLOTS + 2 * SLOTS_PER_BUCKET * 60  # 2 h after warm-up
    horizon = change + 12 * 60 * SLOTS_PER_BUCKET
    p = np.full(horizon, BASE_P)
    ramp = np.minimum(1.0, np.arange(horizon - change) / max(1, ramp_slots))
    p[change:] = BASE_P + (SHIFTED_P - BASE_P) * ramp
    out = []
    for _ in range(streams):
        fired = [
            t for t in runner(negatives(rng, per_slot, p), per_slot, settings, change) if t > change
        ]
        out.append((fired[0] - change) * SLOT_S / 60 if fired else float("inf"))
    return out


def describe(minutes: list[float], rate: int) -> str:
    hit = [m for m in minutes if m != float("inf")]
    missed = len(minutes) - len(hit)
    if not hit:
        return f"missed {missed}/{len(minutes)}"
    median = float(np.median(hit))
    worst = max(hit)
    return (
        f"median {median:5.1f} min ({median * rate:5.0f} ev), max {worst:5.1f} min "
        f"({worst * rate:5.0f} ev), missed {missed}/{len(minutes)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scope-days", type=int, default=200)
    parser.add_argument("--streams", type=int, default=20, help="change-point streams per case")
    parser.add_argument("--rates", default="4,12,40", help="events per minute per scope")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--path",
        choices=["event-time", "wall"],
        default="event-time",
        help="event-time: one evaluation per closed bucket (the evaluator since issue 24); "
        "wall: every 15 s with the open bucket counted (before).",
    )
    parser.add_argument("--defaults-only", action="store_true", help="Only z_open=5, PH λ=4.")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    zs = (5.0,) if args.defaults_only else (3.0, 3.5, 4.0, 5.0)
    shift: list[tuple[str, object]] = [(f"z_open={z}", ShiftSettings(z_open=z)) for z in zs]
    drift: list[tuple[str, object]] = [
        (f"PH delta={d} lambda={lam}", DriftSettings(delta=d, threshold=lam))
        for d in ((0.05,) if args.defaults_only else (0.05, 0.10))
        for lam in ((4.0,) if args.defaults_only else (1.0, 2.0, 3.0, 4.0))
    ]
    shift_runner = run_shift_closed if args.path == "event-time" else run_shift
    cases: list[tuple[str, Runner, list[tuple[str, object]]]] = [
        ("z-test", shift_runner, shift),  # type: ignore[list-item]
        ("PageHinkley", run_drift, drift),  # type: ignore[list-item]
    ]
    if args.path == "event-time":
        global LIVE_DELAYS  # noqa: PLW0603 - one switch for the drift runner
        LIVE_DELAYS = False
        print(
            "delays are event time from the change to the end of the deciding bucket: what a "
            "backlog being caught up sees; live adds the lateness (2 min) and up to one "
            "evaluation interval (15 s)"
        )
    for name, runner, settings_list in cases:
        for label, settings in settings_list:
            for rate in rates:
                started = time.perf_counter()
                fa = false_alarms(runner, settings, rate, args.scope_days, args.seed)
                step = delays(runner, settings, rate, 0, args.streams, args.seed + 1)
                ramp = delays(runner, settings, rate, 6 * 60 * 4, args.streams, args.seed + 2)
                print(
                    f"{name:11s} {label:26s} rate {rate:3d}/min  false alarms "
                    f"{fa:6.3f}/scope/day | step: {describe(step, rate)} | "
                    f"ramp 6h: {describe(ramp, rate)}  [{time.perf_counter() - started:.0f}s]",
                    flush=True,
                )


if __name__ == "__main__":
    main()
