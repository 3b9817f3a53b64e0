"""Cost of one alert evaluation on a full day of events: whole-baseline read vs bucket cache.

Fills a SQLite store with ``--events`` enriched chats spread over 24 hours (3 channels,
20 intents), then times, in one run and alternating, (a) ``read_buckets`` over the whole
window, which is what every evaluation did before the cache, and (b) a steady-state
``Evaluator.evaluate`` every 15 s of clock, which reads only the buckets still open.
Prints the medians and their ratio.

Usage: ``python bench/alert_evaluation.py [--events 100000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from pipeline.alerting.evaluator import AlertSettings, Evaluator
from pipeline.alerting.windows import Window, read_buckets
from pipeline.metrics import Metrics
from pipeline.schema import EnrichedEvent, LabelScore, ModelRef, SourceRef, TaskResult, WordWeight
from pipeline.store import open_store

T0 = datetime(2026, 11, 26, tzinfo=UTC)
WORDS = "my card was declined at the shop again today please help".split()


def event(n: int, at: datetime, rng: random.Random) -> EnrichedEvent:
    label = "negative" if rng.random() < 0.3 else "neutral"
    attention = [WordWeight(word=w, weight=1 / len(WORDS)) for w in WORDS]
    return EnrichedEvent(
        input_id=f"chat:{n}",
        kind="chat",
        source=SourceRef(topic="chat", partition=n % 3, offset=n),
        message_id=str(n),
        conversation_id=f"c{n // 3}",
        channel=rng.choice(["web", "app", "whatsapp"]),
        role="customer",
        text=" ".join(WORDS),
        intent=TaskResult(
            label=f"intent_{rng.randrange(20)}",
            score=0.9,
            top=[LabelScore(label="x", score=0.9)],
            attention=attention,
        ),
        sentiment=TaskResult(
            label=label, score=0.8, top=[LabelScore(label=label, score=0.8)], attention=attention
        ),
        model=ModelRef(name="m", version="1", tokenizer_hash="h"),
        event_time=at,
        processed_time=at,
        model_latency_ms=1.0,
        end_to_end_latency_ms=1.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="Events over 24 hours.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds of each variant.")
    args = parser.parse_args()
    rng = random.Random(0)
    window = Window()  # the production defaults: 1 min buckets, 15 min vs 24 h
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with open_store(url) as store:
            step = 86_400 / args.events
            chunk = 5_000
            for first in tqdm(range(0, args.events, chunk), desc="filling the store"):
                batch = [
                    event(n, T0 + timedelta(seconds=n * step), rng)
                    for n in range(first, min(first + chunk, args.events))
                ]
                store.write(batch, [])
            now = T0 + timedelta(days=1)
            evaluator = Evaluator(
                store.engine, Metrics(), owner="bench", settings=AlertSettings(window=window)
            )
            evaluator.evaluate(now)  # the first evaluation reads everything once
            full: list[float] = []
            cached: list[float] = []
            for k in range(1, args.rounds + 1):
                at = now + timedelta(seconds=15 * k)
                started = time.perf_counter()
                read_buckets(
                    store.engine,
                    window.baseline_start(at),
                    at + timedelta(seconds=window.bucket_s),
                    window.bucket_s,
                )
                full.append(time.perf_counter() - started)
                started = time.perf_counter()
                evaluator.evaluate(at)
                cached.append(time.perf_counter() - started)
    a, b = statistics.median(full), statistics.median(cached)
    print(f"events over 24 h: {args.events}")
    print(f"whole-window read (before): median {a * 1000:.0f} ms over {args.rounds} rounds")
    print(f"cached evaluation (now):    median {b * 1000:.0f} ms over {args.rounds} rounds")
    print(f"ratio before/now: {a / b:.1f}x")


if __name__ == "__main__":
    main()
