"""An alert's evidence: distinct example messages and the words whose attention rose."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.model import AlertEvent, Evidence, Firing, RisingWord
from pipeline.alerting.rising_words import rising
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
    until: datetime | None = None,
) -> tuple[list[Evidence], list[RisingWord]]:
    """Example messages of ``key``'s episode and the words whose attention rose.

    ``words`` words ranked by their log-odds z-score
    (:func:`~pipeline.alerting.rising_words.rising`) from ``current_start`` to ``until``
    (default: no end) against the ``baseline_s`` before it, each side read from its newest
    ``sample`` messages.  ``messages`` examples (no text twice) among that episode sample's
    negative messages: those that put the most attention on the rising words first, then
    the most negative, so the examples show what rose rather than the store's angriest
    messages of any kind.  Chats count as customer turns only
    (:func:`~pipeline.alerting.windows.scope_filter`).
    """
    table = events_table
    where = scope_filter(key)
    episode = [table.c.event_time >= current_start]
    if until is not None:
        episode.append(table.c.event_time < until)
    with engine.connect() as conn:
        current = conn.execute(
            sa.select(
                table.c.sentiment_attention,
                table.c.text,
                table.c.sentiment_label,
                table.c.sentiment_score,
            )
            .where(where, *episode)
            .order_by(table.c.event_time.desc())
            .limit(sample)
        ).all()
        baseline = conn.execute(
            sa.select(table.c.sentiment_attention)
            .where(where, table.c.event_time < current_start)
            .where(table.c.event_time >= current_start - timedelta(seconds=baseline_s))
            .order_by(table.c.event_time.desc())
            .limit(sample)
        ).all()
    shifts = rising(
        _mass(row[0] for row in current), _mass(row[0] for row in baseline), words
    )
    risen = {s.word for s in shifts}
    negative = [
        (text, float(score), attention, _share_on(attention, risen))
        for attention, text, label, score in current
        if label == "negative"
    ]
    negative.sort(key=lambda r: (-r[3], -r[1]))
    evidence = [
        Evidence(
            text_excerpt=text[:160],
            sentiment_score=score,
            top_words=_top_words(attention, 3),
        )
        for text, score, attention, _ in distinct_texts(negative, messages)
    ]
    return evidence, [
        RisingWord(word=s.word, baseline=s.baseline, current=s.current, z=round(s.z, 3))
        for s in shifts
    ]


def _share_on(attention: Any, words: set[str]) -> float:
    """Share of one message's attention that falls on ``words``."""
    pairs = _words(attention)
    total = sum(weight for _, weight in pairs)
    if not words or total <= 0:
        return 0.0
    return sum(weight for word, weight in pairs if word in words) / total


def distinct_texts(rows: Iterable[Sequence[Any]], limit: int) -> list[Sequence[Any]]:
    """The first ``limit`` rows whose text (``row[0]``) was not seen before.

    Texts compare after case folding and collapsing white space, so "Card declined!"
    and "card  declined!" are one example.
    """
    seen: set[str] = set()
    out: list[Sequence[Any]] = []
    for row in rows:
        norm = " ".join(str(row[0]).casefold().split())
        if norm in seen:
            continue
        seen.add(norm)
        out.append(row)
        if len(out) >= limit:
            break
    return out


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
    """Each word's attention mass over ``attentions``, in token-equivalents.

    A message's weights are scaled to sum to its number of words, so under even
    attention a word's mass is its plain count and the log-odds z-scores are on the
    scale of counts, as Monroe et al. define them (a message's raw weights sum to one,
    which would count a ten-word message as one token and shrink every z by about
    three).  Attention moves mass towards the words the model read the label from.
    """
    mass: dict[str, float] = {}
    for attention in attentions:
        words = [(word, weight) for word, weight in _words(attention) if word and weight > 0]
        total = sum(weight for _, weight in words)
        if total <= 0:
            continue
        scale = len(words) / total
        for word, weight in words:
            mass[word] = mass.get(word, 0.0) + weight * scale
    return mass


def firing_of(event: AlertEvent | None) -> Firing | None:
    """What the firing ``event`` of an episode fired on, for its resolve event to keep."""
    if event is None:
        return None
    return Firing(
        at=event.starts_at,
        baseline_share=event.baseline_share,
        current_share=event.current_share,
        baseline_n=event.baseline_n,
        current_n=event.current_n,
        statistic=event.statistic,
    )
