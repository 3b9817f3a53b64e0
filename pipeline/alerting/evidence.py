"""An alert's evidence: the most negative messages and the words whose attention mass rose."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.model import Evidence, RisingWord
from pipeline.alerting.windows import ScopeKey, scope_filter
from pipeline.store.tables import events_table


def read_evidence(
    engine: Engine,
    key: ScopeKey,
    current_start: datetime,
    baseline_s: int,
    *,
    messages: int,
    words: int,
    sample: int,
) -> tuple[list[Evidence], list[RisingWord]]:
    """The most negative messages of ``key`` and the words whose attention mass rose.

    ``messages`` messages since ``current_start``; ``words`` words whose share of the
    attention mass rose most against the ``baseline_s`` before it (each side read from its
    newest ``sample`` messages).
    """
    table = events_table
    where = scope_filter(key)
    with engine.connect() as conn:
        worst = conn.execute(
            sa.select(table.c.text, table.c.sentiment_score, table.c.sentiment_attention)
            .where(where, table.c.event_time >= current_start)
            .where(table.c.sentiment_label == "negative")
            .order_by(table.c.sentiment_score.desc())
            .limit(messages)
        ).all()
        # What people are suddenly talking about: attention mass of the whole window
        # against the baseline's (the newest ``baseline_sample`` messages).
        current = conn.execute(
            sa.select(table.c.sentiment_attention)
            .where(where, table.c.event_time >= current_start)
            .order_by(table.c.event_time.desc())
            .limit(sample)
        ).all()
        baseline = conn.execute(
            sa.select(table.c.sentiment_attention)
            .where(where, table.c.event_time < current_start)
            .where(
                table.c.event_time
                >= current_start - timedelta(seconds=baseline_s)
            )
            .order_by(table.c.event_time.desc())
            .limit(sample)
        ).all()
    evidence = [
        Evidence(
            text_excerpt=text[:160],
            sentiment_score=float(score),
            top_words=_top_words(attention, 3),
        )
        for text, score, attention in worst
    ]
    current_mass = _mass(row[0] for row in current)
    baseline_mass = _mass(row[0] for row in baseline)
    rising = sorted(
        (
            RisingWord(word=w, baseline=baseline_mass.get(w, 0.0), current=share)
            for w, share in current_mass.items()
        ),
        key=lambda r: r.baseline - r.current,
    )[: words]
    return evidence, [r for r in rising if r.current > r.baseline]


def _words(attention: Any) -> list[tuple[str, float]]:
    if not isinstance(attention, list):
        return []
    return [
        (str(w["word"]).strip(".,!?;:\"'()").lower(), float(w["weight"]))
        for w in attention
        if isinstance(w, dict) and "word" in w and "weight" in w
    ]


def _top_words(attention: Any, n: int) -> list[str]:
    return [w for w, _ in sorted(_words(attention), key=lambda p: -p[1])[:n] if w]


def _mass(attentions: Iterable[Any]) -> dict[str, float]:
    """Each word's share of the total attention mass of ``attentions``."""
    mass: dict[str, float] = {}
    for attention in attentions:
        for word, weight in _words(attention):
            if word:
                mass[word] = mass.get(word, 0.0) + weight
    total = sum(mass.values()) or 1.0
    return {word: value / total for word, value in mass.items()}
