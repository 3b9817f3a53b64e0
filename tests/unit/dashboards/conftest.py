"""A filled analyst store, a model directory and the app over them, for the dashboard tests.

The store holds 48 chat turns (12 conversations of 4 turns, two channels, customer and agent
turns, some texts with ``%`` and ``_``) and 12 news articles with tickers, one event a minute
from ``T0``, plus one resolved and one open alert.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnwatch.cli.dashboard import dashboard_app
from attnwatch.settings import Settings
from pipeline.alerting.evidence import firing_of
from pipeline.alerting.model import AlertEvent, Evidence, RisingWord
from pipeline.schema import EnrichedEvent, LabelScore, TaskResult, WordWeight
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable
from tests.support.events import chat_event, news_event

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
INTENTS = ["card_declined", "password_reset", "refund_request"]
SENTIMENTS = ["negative", "neutral", "positive"]
CHAT_TEXTS = [
    "my card was declined again after the outage",
    "I am 100% sure the refund never arrived",
    "please reset my password_reset link expired",
    "thanks, that fixed it",
]
NEWS_TEXTS = [
    "NatWest shares fall after profit warning",
    "Bank profits rise as rates stay high\nAnalysts expect more gains next year.",
    "Regulator fines lender over outage",
]
N_CHATS = 48
N_NEWS = 12


def attention(text: str, heavy: int = 0) -> list[WordWeight]:
    """Weights over the text's words, one word heavier, summing to 1."""
    words = text.split()
    weights = [1.0] * len(words)
    weights[heavy % len(words)] = 5.0
    total = sum(weights)
    return [WordWeight(word=w, weight=x / total) for w, x in zip(words, weights)]


def task(
    label: str,
    labels: list[str],
    text: str,
    score: float = 0.8,
    heavy: int = 0,
    evidence: str | None = None,
) -> TaskResult:
    rest = [lb for lb in labels if lb != label]
    top = [LabelScore(label=label, score=score)] + [
        LabelScore(label=lb, score=(1 - score) / len(rest)) for lb in rest
    ]
    return TaskResult(
        label=label, score=score, top=top, attention=attention(text, heavy), evidence=evidence
    )


def chat(n: int) -> EnrichedEvent:
    text = CHAT_TEXTS[n % len(CHAT_TEXTS)]
    role = "customer" if n % 4 != 3 else "agent"
    at = T0 + n * MINUTE
    return chat_event(
        n,
        at,
        conversation_id=f"c{n // 4}",
        channel="app" if n % 2 == 0 else "web",
        role=role,
        text=text,
        intent=task(INTENTS[n % 3], INTENTS, text, heavy=1) if role == "customer" else None,
        sentiment=task(SENTIMENTS[n % 3], SENTIMENTS, text, heavy=2),
        processed_time=at + timedelta(seconds=1),
        end_to_end_latency_ms=1000.0,
    )


def news(n: int) -> EnrichedEvent:
    text = NEWS_TEXTS[n % len(NEWS_TEXTS)]
    tickers = [["NWB"], ["NWBX"], ["AAPL", "NWB"]][n % 3]
    at = T0 + (N_CHATS + n) * MINUTE
    evidence = text.split("\n")[1] if "\n" in text else None
    return news_event(
        n,
        at,
        news_source="wire" if n % 2 == 0 else "blog",
        tickers=tickers,
        text=text,
        sentiment=task(SENTIMENTS[n % 3], SENTIMENTS, text, heavy=0, evidence=evidence),
        processed_time=at + timedelta(seconds=1),
        end_to_end_latency_ms=1000.0,
    )


def alert_event(
    alert_id: str,
    status: str,
    scope_kind: str,
    scope: str,
    starts_at: datetime,
    ends_at: datetime | None,
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        status=status,
        scope_kind=scope_kind,
        scope=scope,
        stream="chat",
        severity="warning",
        starts_at=starts_at,
        ends_at=ends_at,
        summary=f"chat {scope_kind} {scope!r}: negative share 70% over 40 messages",
        baseline_share=0.2,
        current_share=0.7,
        baseline_n=400,
        current_n=40,
        statistic=6.5,
        detector="two_proportion_z",
        evidence=[
            Evidence(
                text_excerpt="my card was declined again",
                sentiment_score=0.93,
                top_words=["declined", "card"],
            )
        ],
        rising_words=[RisingWord(word="declined", baseline=0.05, current=0.31, z=4.2)],
    )


def fill_alerts(engine) -> None:
    table = AlertTable(engine)
    resolved = alert_event("chat/channel/app/1", "firing", "channel", "app", T0 + 10 * MINUTE, None)
    table.fire(
        {
            "alert_id": resolved.alert_id,
            "scope_kind": "channel",
            "scope": "app",
            "stream": "chat",
            "severity": "warning",
            "starts_at": resolved.starts_at,
            "statistic": 6.5,
            "payload": resolved.model_dump_json(),
        },
        T0 + 10 * MINUTE,
    )
    # It ended on other numbers than it fired on: the page shows both.
    ended = resolved.model_copy(
        update={
            "status": "resolved",
            "ends_at": T0 + 20 * MINUTE,
            "baseline_share": 0.54,
            "baseline_n": 925,
            "current_share": 0.49,
            "current_n": 273,
            "fired": firing_of(resolved),
        }
    )
    table.resolve(resolved.alert_id, T0 + 20 * MINUTE, ended.model_dump_json(), T0 + 20 * MINUTE)
    firing = alert_event(
        "chat/intent/card_declined/2", "firing", "intent", "card_declined", T0 + 30 * MINUTE, None
    )
    table.fire(
        {
            "alert_id": firing.alert_id,
            "scope_kind": "intent",
            "scope": "card_declined",
            "stream": "chat",
            "severity": "warning",
            "starts_at": firing.starts_at,
            "statistic": 6.5,
            "payload": firing.model_dump_json(),
        },
        T0 + 30 * MINUTE,
    )


def write_model_dir(directory: Path, faithfulness: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "name": "test-model",
                "version": "abc123def456",
                "tokenizer_hash": "h",
                "max_length": 64,
                "encoder_source": "tiny",
                "created_at": "2026-11-26T10:00:00+00:00",
                "encoder": {},
                "tasks": [
                    {"name": "intent", "num_heads": 1},
                    {"name": "sentiment", "num_heads": 1},
                ],
            }
        )
    )
    (directory / "labels.json").write_text(json.dumps({"intent": INTENTS, "sentiment": SENTIMENTS}))
    (directory / "metrics.json").write_text(
        json.dumps(
            {
                "test": {
                    "intent": {
                        "chat": {
                            "accuracy": 0.85,
                            "macro_f1": 0.84,
                            "majority_baseline": 0.1,
                            "n": 10,
                            "per_class_f1": {},
                        }
                    },
                    "sentiment": {
                        "chat": {
                            "accuracy": 0.95,
                            "macro_f1": 0.94,
                            "majority_baseline": 0.4,
                            "n": 10,
                            "per_class_f1": {},
                        }
                    },
                }
            }
        )
    )
    (directory / "calibration.json").write_text(
        json.dumps(
            {"temperature": 0.85, "ece_before": 0.14, "ece_after": 0.05, "unknown_threshold": 0.25}
        )
    )
    (directory / "eval-test").mkdir(exist_ok=True)
    per_class = {
        lb: {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 3.0} for lb in SENTIMENTS
    }
    (directory / "eval-test" / "report.json").write_text(
        json.dumps(
            {
                "sentiment": {
                    "accuracy": 0.9,
                    "macro_f1": 0.88,
                    "per_class": per_class,
                    "labels": SENTIMENTS,
                    "confusion": [[3, 0, 0], [1, 2, 0], [0, 0, 3]],
                    "ece": 0.06,
                    "oos_recall": None,
                    "oos_precision": None,
                    "n": 9,
                }
            }
        )
    )
    card = "# test-model\n\n## Labels\n\n- sentiment: negative, neutral, positive\n"
    if faithfulness:
        card += (
            "\n## Explanation faithfulness: sentiment\n\n"
            "### Faithfulness (sentiment, n = 50)\n\n"
            "| method | comp@20% | AOPC comp |\n|---|---:|---:|\n"
            "| attention | 0.412 | 0.300 |\n| random | 0.101 | 0.090 |\n\n"
            "comprehensiveness@20%: attention ÷ random = 4.08\n"
        )
    (directory / "README.md").write_text(card, encoding="utf-8")
    return directory


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.write([chat(n) for n in range(N_CHATS)] + [news(n) for n in range(N_NEWS)], [])
        fill_alerts(store.engine)
    return url


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "model")


@pytest.fixture
def settings(store_url: str, model_dir: Path) -> Settings:
    return Settings(store_url=store_url, model_dir=model_dir, dashboard_host="127.0.0.1")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(dashboard_app(settings, live_poll_s=0.05, live_max_s=0.5)) as test_client:
        yield test_client
