"""Event-time alert evaluation: time to catch up a backlog, and the cost of one bucket.

Fills a store (SQLite, or a private PostgreSQL cluster started from the local binaries)
with ``--hours`` of chats on ``--scopes`` channels at ``--rate`` messages a minute each
(customer turns, 30% negative, no intent: the scopes are the channels plus ``overall``),
then, with the production windows (1-minute buckets, 15-minute window, 24-hour baseline,
2 minutes' lateness):

- **catch-up**: a fresh evaluator (no saved state) evaluates every closed bucket up to the
  final watermark in one call, as ``run --idle-exit`` does after a backlog: wall time,
  buckets stepped, time per bucket, the sliding window's buckets held (the memory bound)
  and the process's peak RSS;
- **live**: one more minute of events is stored and evaluated (one new bucket, plus the
  watermark read and the state save), ``--rounds`` times: median per bucket.

Usage: ``python bench/alert_catch_up.py [--store sqlite|postgresql|both] [--hours 24]
[--scopes 50] [--rate 10] [--rounds 10]``
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipeline.alerting.evaluator import AlertSettings, Evaluator
from pipeline.metrics import Metrics
from pipeline.store import open_store
from pipeline.store.tables import events_table

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ATTENTION = [{"word": "card", "weight": 0.5}, {"word": "declined", "weight": 0.5}]


def rows(
    first_minute: int, minutes: int, scopes: int, rate: int, seed: int
) -> list[dict[str, Any]]:
    """Event rows for ``minutes`` minutes from ``first_minute``: ``rate`` per minute per scope."""
    rng = random.Random(seed)
    out = []
    for minute in range(first_minute, first_minute + minutes):
        for scope in range(scopes):
            for i in range(rate):
                n = (minute * scopes + scope) * rate + i
                at = T0 + timedelta(minutes=minute, seconds=60 * i / rate)
                label = "negative" if rng.random() < 0.3 else "neutral"
                out.append({
                    "input_id": f"chat:{n}", "schema_version": 1, "kind": "chat",
                    "source_topic": "chat", "source_partition": n % 3, "source_offset": n,
                    "message_id": str(n), "conversation_id": f"c{n}", "channel": f"ch{scope}",
                    "role": "customer", "tickers": [], "text": "my card was declined",
                    "sentiment_label": label, "sentiment_score": 0.8,
                    "sentiment_top": [], "sentiment_attention": ATTENTION,
                    "model_name": "m", "model_version": "1", "tokenizer_hash": "h",
                    "event_time": at, "processed_time": datetime.now(UTC),
                    "model_latency_ms": 1.0, "end_to_end_latency_ms": 1.0,
                })  # fmt: skip
    return out


def fill(engine: sa.Engine, minutes: int, scopes: int, rate: int, first: int = 0) -> None:
    for start in range(first, first + minutes, 30):
        batch = rows(start, min(30, first + minutes - start), scopes, rate, seed=start)
        with engine.begin() as conn:
            conn.execute(sa.insert(events_table), batch)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A private PostgreSQL cluster (the tests' fixture code) and the URL of a fresh database."""
    import psycopg

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures
    from tests.fixtures.postgres import DATABASE, SUPERUSER, _Cluster, find_pg_bindir

    cluster = _Cluster(find_pg_bindir())
    try:
        cluster.init()
        port = cluster.start()
        with psycopg.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        cluster.stop()


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    minutes = int(args.hours * 60)
    with open_store(url) as store:
        started = time.perf_counter()
        fill(store.engine, minutes, args.scopes, args.rate)
        filled = time.perf_counter() - started
        settings = AlertSettings()  # production windows
        evaluator = Evaluator(store.engine, Metrics(), owner="bench", settings=settings)
        now = datetime.now(UTC)
        started = time.perf_counter()
        evaluator.evaluate(now, final=True)
        catch_up = time.perf_counter() - started
        run = evaluator._streams["chat"]
        held = run.sliding.buckets()
        live: list[float] = []
        for k in range(args.rounds):
            fill(store.engine, 1, args.scopes, args.rate, first=minutes + k)
            started = time.perf_counter()
            evaluator.evaluate(now + timedelta(seconds=k + 1), final=True)
            live.append(time.perf_counter() - started)
    return {
        "events": minutes * args.scopes * args.rate,
        "fill_s": filled,
        "catch_up_s": catch_up,
        "buckets": minutes,
        "per_bucket_ms": catch_up / minutes * 1000,
        "live_bucket_ms": statistics.median(live) * 1000,
        "held_buckets": held,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--hours", type=float, default=24.0, help="Hours of backlog.")
    parser.add_argument("--scopes", type=int, default=50, help="Channels (scopes).")
    parser.add_argument("--rate", type=int, default=10, help="Messages a minute per scope.")
    parser.add_argument("--rounds", type=int, default=10, help="Live buckets timed.")
    args = parser.parse_args()
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    for kind in stores:
        with contextlib.ExitStack() as stack:
            if kind == "sqlite":
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            else:
                url = stack.enter_context(postgres())
            r = measure(url, args)
        print(
            f"{kind}: {r['events']:,.0f} events over {args.hours:g} h, {args.scopes} channels "
            f"+ overall at {args.rate}/min each (filled in {r['fill_s']:.0f} s)\n"
            f"  catch-up: {r['catch_up_s']:.1f} s for {r['buckets']:.0f} buckets "
            f"({r['per_bucket_ms']:.1f} ms per bucket), {r['held_buckets']:.0f} buckets held "
            f"in the sliding window, peak RSS {r['peak_rss_mb']:.0f} MB\n"
            f"  live: median {r['live_bucket_ms']:.1f} ms per new bucket over {args.rounds} rounds"
        )


if __name__ == "__main__":
    main()
