"""How long the dashboard takes to answer over a store of many events.

Fills a SQLite store with ``--events`` synthetic enriched events (default 100,000: 80% chat
turns over four channels and 18 intents in 6-turn conversations, 20% news with tickers),
spread over the 24 hours before now, plus 20 alert episodes (two still open); then asks the app
(in process, through FastAPI's TestClient: no network, no browser) for each page
``--runs`` times and prints the median and the slowest time:

- ``/``: the feed's first page (50 rows, shaded);
- ``/trends``: the default 24 h window (every event in it), four charts;
- ``/alerts``;
- the feed's 50th page, reached by following the keyset cursors;
- ``/export.csv?limit=10000`` and ``/export.parquet?limit=10000``.

The client asks for gzip, as browsers do, so the times include compressing the answer.

    python bench/dashboard_load.py [--events 100000] [--runs 7] [--store var/bench-dash.db]

An existing ``--store`` file is reused as it is (``--refill`` rebuilds it).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.web.app import create_app  # noqa: E402
from pipeline.config import DashboardSettings  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.store.alerts import AlertTable  # noqa: E402
from pipeline.store.tables import events_table  # noqa: E402

CHANNELS = ["app", "web", "phone", "whatsapp"]
INTENTS = [
    "account_locked",
    "app_not_working",
    "atm_cash_not_dispensed",
    "balance_inquiry",
    "card_activation",
    "card_declined",
    "card_delivery",
    "card_lost_or_stolen",
    "direct_debit_cancel",
    "exchange_rate",
    "fee_dispute",
    "loan_application",
    "password_reset",
    "refund_request",
    "transfer_failed",
    "transfer_pending",
    "unrecognised_transaction",
    "update_personal_details",
]
SENTIMENTS = ["negative", "neutral", "positive"]
TICKERS = [f"T{i:02d}" for i in range(30)] + ["NWB", "BARC", "LLOY", "HSBA"]
WORDS = (
    "my card was declined again after the outage and nobody answers the phone I need "
    "help with a transfer that is still pending since Monday please refund the fee "
    "thanks that fixed it shares fall after profit warning bank profits rise"
).split()
MODEL_DIR = Path(__file__).resolve().parents[1] / "var" / "models" / "default"


def attention(words: list[str], rng: random.Random) -> list[dict[str, object]]:
    raw = [rng.random() ** 3 for _ in words]
    total = sum(raw)
    return [{"word": w, "weight": x / total} for w, x in zip(words, raw, strict=True)]


def top(label: str, labels: list[str], score: float) -> list[dict[str, object]]:
    rest = [lb for lb in labels if lb != label][:2]
    return [{"label": label, "score": score}] + [
        {"label": lb, "score": (1 - score) / 2} for lb in rest
    ]


def event_rows(
    n: int, end: datetime, rng: random.Random, first: int, last: int
) -> list[dict[str, object]]:
    """Rows ``first`` to ``last`` of ``n`` spread over the day before ``end``, oldest first.

    Shaped as ``pipeline.store.tables.event_row`` writes them.
    """
    rows = []
    step = timedelta(days=1) / n
    for i in range(first, last):
        at = end - (n - i) * step
        words = rng.sample(WORDS, rng.randint(6, 18))
        text = " ".join(words)
        sentiment = rng.choices(SENTIMENTS, weights=[3, 5, 2])[0]
        score = rng.uniform(0.4, 0.99)
        news = rng.random() < 0.2
        customer = not news and rng.random() < 0.6
        intent = rng.choice(INTENTS) if customer else None
        rows.append(
            {
                "input_id": f"{'news' if news else 'chat'}:{i}",
                "schema_version": 1,
                "kind": "news" if news else "chat",
                "source_topic": "news" if news else "chat",
                "source_partition": 0,
                "source_offset": i,
                "message_id": None if news else str(i),
                "conversation_id": None if news else f"c{i // 6}",
                "channel": None if news else CHANNELS[(i // 6) % 4],
                "role": None if news else ("customer" if customer else "agent"),
                "article_id": str(i) if news else None,
                "news_source": rng.choice(["wire", "blog", "paper"]) if news else None,
                "tickers": rng.sample(TICKERS, rng.randint(1, 3)) if news else [],
                "text": text,
                "intent_label": intent,
                "intent_score": score if intent else None,
                "intent_top": top(intent, INTENTS, score) if intent else None,
                "intent_attention": attention(words, rng) if intent else None,
                "sentiment_label": sentiment,
                "sentiment_score": score,
                "sentiment_top": top(sentiment, SENTIMENTS, score),
                "sentiment_attention": attention(words, rng),
                "sentiment_evidence": words[0] if news else None,
                "model_name": "bench",
                "model_version": "0",
                "tokenizer_hash": "0",
                "event_time": at,
                "processed_time": at + timedelta(seconds=1),
                "model_latency_ms": 5.0,
                "end_to_end_latency_ms": 1000.0,
            }
        )
    return rows


def fill(url: str, n: int) -> None:
    rng = random.Random(0)
    end = datetime.now(UTC)
    with open_store(url) as store:
        for start in range(0, n, 10_000):
            rows = event_rows(n, end, rng, start, min(n, start + 10_000))
            with store.engine.begin() as conn:
                conn.execute(sa.insert(events_table), rows)
        alerts = AlertTable(store.engine)
        for k in range(20):
            at = end - timedelta(hours=23) + k * timedelta(hours=1)
            payload = {
                "alert_id": f"bench/{k}",
                "status": "firing",
                "scope_kind": "channel",
                "scope": CHANNELS[k % 4],
                "stream": "chat",
                "severity": "warning",
                "starts_at": at.isoformat(),
                "ends_at": None,
                "summary": "bench",
                "baseline_share": 0.3,
                "current_share": 0.6,
                "baseline_n": 900,
                "current_n": 60,
                "statistic": 6.0,
                "detector": "two_proportion_z",
                "evidence": [
                    {
                        "text_excerpt": "card declined",
                        "sentiment_score": 0.9,
                        "top_words": ["declined"],
                    }
                ],
                "rising_words": [{"word": "declined", "baseline": 0.1, "current": 0.3}],
                "related": [],
            }
            alerts.fire(
                {
                    "alert_id": f"bench/{k}",
                    "scope_kind": "channel",
                    "scope": CHANNELS[k % 4],
                    "stream": "chat",
                    "severity": "warning",
                    "starts_at": at,
                    "statistic": 6.0,
                    "payload": json.dumps(payload),
                },
                at,
            )
            if k < 18:  # the last two still open
                done = {
                    **payload,
                    "status": "resolved",
                    "ends_at": (at + timedelta(minutes=30)).isoformat(),
                }
                alerts.resolve(f"bench/{k}", at + timedelta(minutes=30), json.dumps(done), at)


def timed(client: TestClient, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path, headers={"accept": "text/html"})
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            msg = f"{path}: {response.status_code} {response.text[:200]}"
            raise RuntimeError(msg)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--store", type=Path, default=None, help="SQLite file (reused)")
    parser.add_argument("--refill", action="store_true")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "dashboard-bench.db"
    if args.refill and path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    if not path.exists():
        start = time.perf_counter()
        fill(url, args.events)
        print(f"filled {args.events:,} events in {time.perf_counter() - start:.1f} s: {path}")
    start = time.perf_counter()
    app = create_app(DashboardSettings(), url, MODEL_DIR)
    print(f"app start (indexes included): {time.perf_counter() - start:.2f} s")
    with TestClient(app) as client:
        cursor = None
        for _ in range(49):
            page = client.get("/api/events", params={"limit": 50, "cursor": cursor or ""})
            cursor = page.json()["next_cursor"]
        paths = {
            "/": "/",
            "/trends": "/trends",
            "/alerts": "/alerts",
            "feed page 50 (keyset)": f"/?cursor={cursor}",
            "/export.csv?limit=10000": "/export.csv?limit=10000",
            "/export.parquet?limit=10000": "/export.parquet?limit=10000",
        }
        print(f"{'request':<26} {'median ms':>10} {'max ms':>8}  ({args.runs} runs)")
        for name, target in paths.items():
            times = timed(client, target, args.runs)
            print(f"{name:<26} {statistics.median(times) * 1000:>10.1f} {max(times) * 1000:>8.1f}")


if __name__ == "__main__":
    main()
