"""Builders for enriched chat turns and news articles, as the pipeline stores them.

Every field has a plain default and every field can be overridden by keyword, so a test
states only what it is about: ``chat_event(3, at, conversation_id="c1", text="...")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.schema import EnrichedEvent, LabelScore, ModelRef, SourceRef, TaskResult, WordWeight

#: A fixed event time for tests that need one and do not care which.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
#: The model reference of events whose model does not matter.
MODEL = ModelRef(name="m", version="1", tokenizer_hash="h")


def task_result(
    label: str,
    score: float = 0.9,
    *,
    words: Sequence[str] = ("word",),
    weights: Sequence[float] | None = None,
    top: Sequence[LabelScore] | None = None,
    evidence: str | None = None,
) -> TaskResult:
    """One task's result: ``label`` at ``score``, attention spread over ``words``.

    ``weights`` defaults to equal weights; ``top`` defaults to the label alone.
    """
    shares = list(weights) if weights is not None else [1.0 / len(words)] * len(words)
    return TaskResult(
        label=label,
        score=score,
        top=list(top) if top is not None else [LabelScore(label=label, score=score)],
        attention=[WordWeight(word=w, weight=x) for w, x in zip(words, shares, strict=True)],
        evidence=evidence,
    )


def _common(kind: str, n: int, at: datetime, fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": kind,
        "source": SourceRef(topic=kind, partition=0, offset=n),
        "text": f"{kind} {n}",
        "sentiment": task_result("negative", words=("declined",)),
        "model": MODEL,
        "event_time": at,
        "processed_time": at,
        "model_latency_ms": 1.0,
        "end_to_end_latency_ms": 1.0,
    }
    values.update(fields)
    return values


def chat_event(n: int, at: datetime = T0, **fields: Any) -> EnrichedEvent:
    """Chat turn ``n`` (input id ``chat:n``) of conversation ``c{n}`` on channel ``app``."""
    defaults: dict[str, Any] = {
        "input_id": f"chat:{n}",
        "message_id": str(n),
        "conversation_id": f"c{n}",
        "channel": "app",
        "role": "customer",
    }
    return EnrichedEvent(**_common("chat", n, at, {**defaults, **fields}))


def news_event(n: int, at: datetime = T0, **fields: Any) -> EnrichedEvent:
    """News article ``n`` (input id ``news:n``) from ``wire``, with no tickers."""
    defaults: dict[str, Any] = {
        "input_id": f"news:{n}",
        "article_id": str(n),
        "news_source": "wire",
        "tickers": [],
    }
    return EnrichedEvent(**_common("news", n, at, {**defaults, **fields}))
