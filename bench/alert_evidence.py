"""The rising words of each alert in a store: log-odds z (served) against the former share gain.

For every alert episode in the store, reads the episode's customer turns (from the first
bucket of the window that fired to the episode's end) and the baseline before it, as the
evaluator does, and prints the top words by the served ranking (log-odds with an
informative Dirichlet prior, ``pipeline/alerting/rising_words.py``) beside the former
ranking (the gain in each word's share of the attention mass), the z of a few function
words, and the examples the alert would show.

Usage: ``python bench/alert_evidence.py --store-url sqlite:///var/demo/<run>.db
[--words 5] [--prior 500]`` (after ``make demo``: its store is printed at start).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

import sqlalchemy as sa

from pipeline.alerting.evidence import _mass, read_evidence
from pipeline.alerting.rising_words import log_odds_z
from pipeline.alerting.windows import ScopeKey, Window, scope_filter
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable
from pipeline.store.tables import events_table

FUNCTION_WORDS = ("thanks", "please", "i'm", "the", "to", "my", "you")


def _masses(
    engine: sa.Engine, key: ScopeKey, start: datetime, end: datetime, baseline_s: int
) -> tuple[dict[str, float], dict[str, float]]:
    t = events_table
    where = scope_filter(key)
    with engine.connect() as conn:
        current = conn.execute(
            sa.select(t.c.sentiment_attention).where(
                where, t.c.event_time >= start, t.c.event_time < end
            )
        ).all()
        baseline = conn.execute(
            sa.select(t.c.sentiment_attention).where(
                where,
                t.c.event_time < start,
                t.c.event_time >= start - timedelta(seconds=baseline_s),
            )
        ).all()
    return _mass(r[0] for r in current), _mass(r[0] for r in baseline)


def main() -> None:
    """Print the comparison for every alert in ``--store-url``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--words", type=int, default=5)
    parser.add_argument("--prior", type=float, default=500.0)
    parser.add_argument("--bucket-s", type=int, default=1800, help="the demo's bucket")
    parser.add_argument("--current-s", type=int, default=4 * 3600, help="the demo's window")
    parser.add_argument("--baseline-s", type=int, default=86_400)
    args = parser.parse_args()
    window = Window(
        current_s=args.current_s, baseline_s=args.baseline_s, lateness_s=0, bucket_s=args.bucket_s
    )
    with open_store(args.store_url) as store:
        for row in AlertTable(store.engine).rows(limit=50):
            key: ScopeKey = (row["stream"], row["scope_kind"], row["scope"])
            start = window.current_start(row["starts_at"])
            end = (row["ends_at"] or row["starts_at"]) + timedelta(seconds=args.bucket_s)
            current, baseline = _masses(store.engine, key, start, end, args.baseline_s)
            z = log_odds_z(current, baseline, prior_mass=args.prior)
            total_c, total_b = sum(current.values()) or 1.0, sum(baseline.values()) or 1.0
            gain = {w: current.get(w, 0) / total_c - baseline.get(w, 0) / total_b for w in z}
            by_z = sorted(z, key=lambda w: -z[w])[: args.words]
            by_gain = sorted(gain, key=lambda w: -gain[w])[: args.words]
            payload = row["payload"]
            print(f"{row['alert_id']} ({row['status']}): {payload['summary']}")
            print(f"  messages: episode {total_c:.0f} / baseline {total_b:.0f} token-equivalents")
            print("  log-odds z: " + ", ".join(f"{w} {z[w]:.1f}" for w in by_z))
            print("  share gain: " + ", ".join(f"{w} {100 * gain[w]:+.1f} pt" for w in by_gain))
            print("  function words z: " + ", ".join(
                f"{w} {z[w]:.1f}" for w in FUNCTION_WORDS if w in z
            ))  # fmt: skip
            examples, _ = read_evidence(
                store.engine, key, start, args.baseline_s, messages=5, words=args.words,
                sample=2000, until=end,
            )  # fmt: skip
            for e in examples:
                print(f"  - {e.sentiment_score:.2f} {e.text_excerpt[:100]}")


if __name__ == "__main__":
    main()
