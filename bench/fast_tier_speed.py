"""Forward work of fast tiers against the default model: paired, alternating rounds.

    python -m bench.fast_tier_speed --tier var/models/fast --tier var/models/default-onnx-int8

What it measures: ``predict`` (tokenising, bucketing, the forward, word weights: the
model's share of the run loop) over the run loop's units of the harness mix
(:func:`bench.harness.mix.unit_texts`, default 2,000 messages), in micro-batches of
``--batch`` messages as the run loop sends them, on ``--threads`` threads.  Every round
runs the baseline and every tier once, in an order rotated each round, so a change of load
on a shared machine falls on all of them; the ratio reported is the median over rounds of
baseline seconds / tier seconds within a round.  It is a ratio of forward work, not the
run loop's msg/s: the harness (``python -m bench.harness --tier DIR``) measures that.

The 1-minute load average is recorded before and after; above ``--max-load`` before the
first round the script waits (up to ``--wait`` seconds) for the machine to quieten, then
measures anyway and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.harness.mix import MixOptions, build, unit_texts
from models.fast.loading import open_classifier

DEFAULT = Path("var/models/default")


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def wait_quiet(max_load: float, wait: float) -> bool:
    """Wait up to ``wait`` seconds for load < ``max_load``; whether it got there."""
    deadline = time.monotonic() + wait
    while load_average() >= max_load:
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))  # polling the load
    return True


def micro_batches(per_message: Sequence[Sequence[str]], batch: int) -> list[list[str]]:
    """The units of ``batch`` messages at a time, as the run loop hands them to ``predict``."""
    out = []
    for start in range(0, len(per_message), batch):
        out.append([u for units in per_message[start : start + batch] for u in units])
    return out


def paired_ratios(seconds: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Median over rounds of baseline seconds / tier seconds (same round)."""
    base = seconds[baseline]
    return {
        name: statistics.median(b / t for b, t in zip(base, times, strict=True))
        for name, times in seconds.items()
    }


def measure(
    directories: Sequence[Path], batches: list[list[str]], rounds: int, threads: int
) -> dict[str, list[float]]:
    """Seconds of ``predict`` over every batch, per directory and round (rotated order)."""
    torch.set_num_threads(threads)
    classifiers = {
        str(d): open_classifier(d, "cpu", max_texts=64, max_tokens=4096) for d in directories
    }
    for classifier in classifiers.values():  # warm-up: lazy initialisation is not speed
        classifier.predict(batches[0][:16])
    names = list(classifiers)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            for texts in batches:
                classifiers[name].predict(texts)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tier", type=Path, action="append", required=True, dest="tiers")
    parser.add_argument("--baseline", type=Path, default=DEFAULT)
    parser.add_argument("--messages", type=int, default=2000, help="harness mix size")
    parser.add_argument("--batch", type=int, default=128, help="messages per predict call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-load", type=float, default=1.2)
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait for quiet")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    opts = parser.parse_args(argv)
    quiet = wait_quiet(opts.max_load, opts.wait)
    load_before = load_average()
    messages = build(MixOptions(count=opts.messages))
    batches = micro_batches(unit_texts(messages), opts.batch)
    directories = [opts.baseline, *opts.tiers]
    seconds = measure(directories, batches, opts.rounds, opts.threads)
    ratios = paired_ratios(seconds, str(opts.baseline))
    report: dict[str, Any] = {
        "messages": opts.messages,
        "units": sum(len(b) for b in batches),
        "rounds": opts.rounds,
        "threads": opts.threads,
        "load_before": round(load_before, 2),
        "load_after": round(load_average(), 2),
        "quiet_before": quiet,
        "seconds": {k: [round(s, 3) for s in v] for k, v in seconds.items()},
        "ratio_to_baseline": {k: round(v, 3) for k, v in ratios.items()},
    }
    print(f"load {report['load_before']} -> {report['load_after']} (quiet: {quiet})")
    for name, ratio in ratios.items():
        print(f"{ratio:6.2f}x  median {statistics.median(seconds[name]):7.2f} s  {name}")
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
