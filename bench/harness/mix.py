"""The stated message mix: support-chat turns and news, with and without bodies.

Built from the demo scenario (``pipeline.demo.scenario``: conversations of a customer turn,
an agent reply and, half the time, a customer follow-up, interleaved with news) with no bad
input and no injected shift, then news bodies are reshaped to a wire-like length
distribution: the seed data's bodies are all about three sentences, real articles are not.

- chat: ``1 - news_share`` of the messages, seed customer and agent turns (44-135 chars);
- news: ``news_share``; ``1 - body_share`` of them headline-only (wire flashes), the rest
  with a body of ``k`` paragraphs, ``k`` drawn log-normally (median ``body_median_paragraphs``,
  capped at ``max_paragraphs``), each paragraph one seed article body (~3 sentences, ~190
  chars).

Deterministic for a given :class:`MixOptions`; event times are stamped when a message is sent.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from models.data import seed
from pipeline.demo.scenario import ScenarioOptions, scenario
from pipeline.schema import DecodeError, Kind, decode
from pipeline.stream.enrich import units

_FIXED = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MixOptions:
    """Shape of the mix (every field is reported with the results)."""

    count: int = 2000
    news_share: float = 0.25
    body_share: float = 0.5
    body_median_paragraphs: float = 2.0
    body_sigma: float = 0.7
    max_paragraphs: int = 8
    #: Sentences of one article the run loop classifies (its ``max_sentences`` default).
    max_sentences: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            msg = f"count must be >= 1, got {self.count}"
            raise ValueError(msg)
        if not 0 <= self.news_share <= 1 or not 0 <= self.body_share <= 1:
            msg = "news_share and body_share must lie in [0, 1]"
            raise ValueError(msg)
        if self.max_paragraphs < 1 or self.body_median_paragraphs < 1:
            msg = "max_paragraphs and body_median_paragraphs must be >= 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class Message:
    """One input message: which topic kind, its key and its payload (without ``ts``)."""

    kind: Kind
    key: str
    payload: Mapping[str, Any]

    @property
    def shape(self) -> str:
        """``chat/customer``, ``chat/agent``, ``news/headline`` or ``news/body``."""
        if self.kind == "chat":
            return f"chat/{self.payload['role']}"
        return "news/body" if self.payload.get("body") else "news/headline"

    @property
    def chars(self) -> int:
        """Characters of text the message carries (headline and body for news)."""
        if self.kind == "chat":
            return len(str(self.payload["text"]))
        return len(str(self.payload["headline"])) + len(str(self.payload.get("body") or ""))

    def value(self, ts: datetime, cycle: int = 0) -> bytes:
        """The bytes to produce, with event time ``ts``; ``cycle > 0`` makes the ids new."""
        payload = dict(self.payload)
        payload["ts"] = ts.isoformat()
        if cycle:
            field = "message_id" if self.kind == "chat" else "article_id"
            payload[field] = f"{payload[field]}-{cycle}"
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class MixStats:
    """The mix as reported: counts by shape and the length distributions."""

    options: MixOptions
    by_shape: dict[str, int]
    chars: dict[str, dict[str, float]]
    units_per_message: dict[str, float]
    units: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def build(options: MixOptions) -> list[Message]:
    """The ``options.count`` messages of the mix, in stream order."""
    rng = random.Random(options.seed)  # benchmark data, not security
    paragraphs = [a.body for a in seed.load_news() if a.body]
    items = scenario(
        "chat",
        "news",
        ScenarioOptions(
            count=options.count,
            news_share=options.news_share,
            shift=None,
            bad_rate=0.0,
            seed=options.seed,
            ids_seed=options.seed,  # the same mix, ids included, on every run
        ),
        clock=lambda: _FIXED,
    )
    messages: list[Message] = []
    for item in items:
        payload = dict(item.payload or {})
        payload.pop("ts", None)
        if item.topic == "news":
            payload.pop("body", None)
            if rng.random() < options.body_share:
                payload["body"] = "\n\n".join(_body(rng, options, paragraphs))
            messages.append(Message("news", item.key, payload))
        else:
            messages.append(Message("chat", item.key, payload))
    return messages


def _body(rng: random.Random, options: MixOptions, paragraphs: Sequence[str]) -> list[str]:
    draw = rng.lognormvariate(math.log(options.body_median_paragraphs), options.body_sigma)
    k = max(1, min(options.max_paragraphs, round(draw)))
    return [rng.choice(paragraphs) for _ in range(k)]


def unit_texts(messages: Sequence[Message], max_sentences: int = 64) -> list[list[str]]:
    """What the run loop classifies for each message (``pipeline.stream.enrich.units``)."""
    out: list[list[str]] = []
    for message in messages:
        event = decode(message.kind, message.value(_FIXED))
        if isinstance(event, DecodeError):
            msg = f"mix message {message.key} does not decode: {event.reason} {event.detail}"
            raise ValueError(msg)
        out.append(units(event, max_sentences)[0])
    return out


def describe(
    options: MixOptions, messages: Sequence[Message], per_message: Sequence[Sequence[str]]
) -> MixStats:
    """Counts by shape, characters per shape (p50/p90/max) and units per message."""
    by_shape: dict[str, list[int]] = {}
    for message in messages:
        by_shape.setdefault(message.shape, []).append(message.chars)
    counts = [len(u) for u in per_message]
    return MixStats(
        options=options,
        by_shape={shape: len(v) for shape, v in sorted(by_shape.items())},
        chars={shape: distribution(v) for shape, v in sorted(by_shape.items())},
        units_per_message=distribution(counts),
        units=sum(counts),
    )


def distribution(values: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p90 and max of ``values`` (nearest-rank percentiles)."""
    ordered = sorted(values)
    if not ordered:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "mean": round(statistics.fmean(ordered), 2),
        "p50": float(percentile(ordered, 50)),
        "p90": float(percentile(ordered, 90)),
        "max": float(ordered[-1]),
    }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted ``ordered`` (``q`` in 0..100)."""
    if not ordered:
        msg = "percentile of no values"
        raise ValueError(msg)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
