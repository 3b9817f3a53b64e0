"""The prediction cache: repeats cost one forward, memory stays bounded, a reload empties it."""

from __future__ import annotations

import gc
import json
import threading
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from consumers.source import SourceRecord
from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.saving import ModelInfo, TaskSpec
from models.words import WordWeight, word_spans
from pipeline.config import StreamSettings
from pipeline.metrics import Metrics
from pipeline.schema import EnrichedEvent
from pipeline.sinks.base import Record
from pipeline.stream.checkpoint import Checkpoint
from pipeline.stream.prediction_cache import (
    CachedClassifier,
    PredictionCache,
    cached,
    entry_bytes,
    swap,
)
from pipeline.stream.processing import BatchProcessor, RunReport

SENTIMENT = ("negative", "neutral", "positive")
INTENTS = ("card_declined", "refund", "transfer", "balance")


def info(version: str) -> ModelInfo:
    return ModelInfo(
        name="lengths",
        version=version,
        tokenizer_hash="h",
        max_length=48,
        tasks=(TaskSpec("intent", INTENTS), TaskSpec("sentiment", SENTIMENT)),
        encoder_source="none",
        created_at="2026-11-25",
    )


class LengthClassifier:
    """A deterministic classifier built like the real one's answers: labels from the text's
    length, longer words weigh more; new objects per task and call, as inference makes them.
    Records every call's texts."""

    def __init__(self, version: str = "1") -> None:
        self.info = info(version)
        self.calls: list[list[str]] = []

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        self.calls.append(list(texts))
        wanted = list(tasks) if tasks is not None else [t.name for t in self.info.tasks]
        labels = {t.name: t.labels for t in self.info.tasks}
        out: list[Prediction] = []
        for text in texts:
            spans = word_spans(text)
            total = sum(e - s for s, e in spans) or 1
            answer: Prediction = {}
            for task in wanted:
                names = labels[task]
                label = names[len(text) % len(names)]
                score = 0.5 + (len(text) % 7) / 20
                rest = [n for n in names if n != label][:2]
                top = ((label, score), *((n, (1 - score) / 2) for n in rest))
                words = tuple(WordWeight(text[s:e], (e - s) / total, s, e) for s, e in spans)
                answer[task] = TaskPrediction(label, score, top, words)
            out.append(answer)
        return out


class BrokenClassifier(LengthClassifier):
    """Raises on a text containing ``boom``; answers one text too few on ``short``."""

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        if any("boom" in t for t in texts):
            msg = "model fault"
            raise RuntimeError(msg)
        answers = super().predict(texts, tasks)
        return answers[:-1] if any("short" in t for t in texts) else answers


def counter(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_a_repeat_is_answered_with_the_identical_prediction_without_the_model() -> None:
    inner = LengthClassifier()
    model = CachedClassifier(inner, PredictionCache(10**6))
    (first,) = model.predict(["my card was declined again"])
    (again,) = model.predict(["my card was declined again"])
    assert len(inner.calls) == 1
    assert again == first
    for task in ("intent", "sentiment"):
        assert again[task] is first[task]  # the very frozen objects: labels, scores, words
    # Each caller has its own mapping: editing it cannot change what the cache hands out.
    again.pop("intent")
    (third,) = model.predict(["my card was declined again"])
    assert set(third) == {"intent", "sentiment"}
    assert model.info is inner.info


def test_only_distinct_misses_go_to_the_model_in_one_call_in_order() -> None:
    inner = LengthClassifier()
    metrics = Metrics()
    model = CachedClassifier(inner, PredictionCache(10**6, metrics))
    model.predict(["hello"])
    texts = ["thanks", "hello", "where is my refund?", "thanks", "thanks", "hi"]
    answers = model.predict(texts, ["intent", "sentiment"])
    assert inner.calls == [["hello"], ["thanks", "where is my refund?", "hi"]]
    assert answers == LengthClassifier().predict(texts)  # same answers, in the texts' order
    # Hits: "hello" from before and two repeats of "thanks" in the call.
    assert (model.cache.hits, model.cache.misses) == (3, 4)
    assert counter(metrics, "attnwatch_prediction_cache_hits_total") == 3
    assert counter(metrics, "attnwatch_prediction_cache_misses_total") == 4
    assert counter(metrics, "attnwatch_prediction_cache_entries") == 4
    assert counter(metrics, "attnwatch_prediction_cache_bytes") == model.cache.bytes > 0


def test_the_model_version_and_the_tasks_are_part_of_the_key() -> None:
    cache = PredictionCache(10**6)
    v1, v2 = LengthClassifier("1"), LengthClassifier("2")
    CachedClassifier(v1, cache).predict(["hello there"])
    CachedClassifier(v2, cache).predict(["hello there"])
    assert v2.calls == [["hello there"]]  # version 1's answer is not version 2's
    (sentiment_only,) = CachedClassifier(v2, cache).predict(["hello there"], ["sentiment"])
    assert v2.calls[-1] == ["hello there"] and set(sentiment_only) == {"sentiment"}
    CachedClassifier(v2, cache).predict(["hello there"], ["intent", "sentiment"])  # = all tasks
    assert len(v2.calls) == 2
    assert cache.entries == 3


def test_least_recently_used_entries_are_evicted_to_stay_within_the_byte_bound() -> None:
    texts = [f"message number {i} about a card" for i in range(5)]
    sizes = [entry_bytes(t, a) for t, a in zip(texts, LengthClassifier().predict(texts))]
    assert len(set(sizes)) == 1
    inner = LengthClassifier()
    model = CachedClassifier(inner, PredictionCache(3 * sizes[0] + sizes[0] // 2))
    model.predict(texts[:3])
    model.predict(texts[:1])  # text 0 is now the most recently used
    model.predict(texts[3:5])  # two more: texts 1 and 2 must go
    assert model.cache.entries == 3
    assert model.cache.bytes == 3 * sizes[0] <= model.cache.max_bytes
    calls = len(inner.calls)
    model.predict([texts[0], texts[3], texts[4]])
    assert len(inner.calls) == calls  # kept
    model.predict([texts[1]])
    assert inner.calls[-1] == [texts[1]]  # evicted, so asked again


def test_an_entry_larger_than_the_whole_budget_is_answered_but_not_kept() -> None:
    inner = LengthClassifier()
    model = CachedClassifier(inner, PredictionCache(100))
    (answer,) = model.predict(["a text far larger than one hundred bytes of cache"])
    assert answer["sentiment"].words
    assert (model.cache.entries, model.cache.bytes) == (0, 0)
    model.predict(["a text far larger than one hundred bytes of cache"])
    assert len(inner.calls) == 2


def test_the_estimate_matches_the_memory_tracemalloc_sees() -> None:
    """The byte budget is honest: within 15% of what the entries really hold."""
    texts = [
        f"customer {i}: my card was declined twice at the store, please help me now"
        for i in range(300)
    ] + [f"{i}. Shares of Harbor Holdings fell 3.5% after the results." for i in range(300)]
    cache = PredictionCache(10**9)
    model = CachedClassifier(LengthClassifier(), cache)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        model.predict(texts)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The texts existed before; the cache keeps them, so they count in its estimate.
    held += sum(map(len, texts)) + 49 * len(texts)
    assert 0.85 * held <= cache.bytes <= 1.15 * held, (cache.bytes, held)


def test_a_model_error_caches_nothing_and_a_short_answer_is_an_error() -> None:
    inner = BrokenClassifier()
    model = CachedClassifier(inner, PredictionCache(10**6))
    with pytest.raises(RuntimeError, match="model fault"):
        model.predict(["fine", "boom"])
    assert (model.cache.entries, model.cache.hits, model.cache.misses) == (0, 0, 0)
    with pytest.raises(RuntimeError, match="answered 1 of 2 texts"):
        model.predict(["fine", "short"])
    assert model.cache.entries == 0


def test_zero_disables_the_cache_and_the_setting_is_validated() -> None:
    inner = LengthClassifier()
    assert cached(inner, 0) is inner
    wrapped = cached(inner, StreamSettings().prediction_cache_mb)
    assert isinstance(wrapped, CachedClassifier)
    assert wrapped.cache.max_bytes == 64 * 2**20
    with pytest.raises(ValidationError):
        StreamSettings(prediction_cache_mb=-1)


def test_a_hot_reload_empties_the_cache_and_the_new_model_answers() -> None:
    old, new = LengthClassifier("1"), LengthClassifier("1")  # a rebuild that kept its version
    metrics = Metrics()
    serving = cached(old, 1, metrics)
    processor = BatchProcessor(
        classifier=serving,
        checkpoint=Checkpoint([], NoSource()),
        topic_kinds={"chat": "chat"},
        metrics=metrics,
        tasks=["intent", "sentiment"],
    )
    serving.predict(["hello", "thanks"])
    assert counter(metrics, "attnwatch_prediction_cache_entries") == 2
    processor.use(new)
    assert processor.classifier is serving  # the same cache, around the new model
    assert isinstance(serving, CachedClassifier) and serving.inner is new
    assert (serving.cache.entries, serving.cache.bytes) == (0, 0)
    assert counter(metrics, "attnwatch_prediction_cache_entries") == 0
    serving.predict(["hello"])
    assert new.calls == [["hello"]] and len(old.calls) == 1
    # No cache: the new model simply serves; a cached one handed in replaces the old.
    assert swap(old, new) is new
    other = CachedClassifier(old, PredictionCache(10**6))
    assert swap(serving, other) is other and serving.cache.entries == 0


# Through the run loop's batch processor -----------------------------------------------------


class NoSource:
    """A source whose commit is never reached (these tests flush, never commit)."""

    def commit(self, offsets: object) -> None:
        msg = f"unexpected commit of {offsets}"
        raise AssertionError(msg)


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.pending: list[Record] = []
        self.flushed: list[Record] = []

    def add(self, record: Record, topic: str = "", partition: int = 0) -> None:
        self.pending.append(record)

    def flush(self) -> None:
        self.flushed.extend(self.pending)
        self.pending = []


def chat(offset: int, text: str, role: str = "customer") -> SourceRecord:
    payload = {
        "message_id": f"m{offset}",
        "conversation_id": f"c{offset // 2}",
        "channel": "web",
        "role": role,
        "text": text,
        "ts": datetime(2026, 11, 25, 10, 0, tzinfo=UTC).isoformat(),
    }
    return SourceRecord("chat", 0, offset, b"c", json.dumps(payload).encode(), 1_700_000_000_000)


def run_batches(model: TextClassifier, batches: Sequence[Sequence[SourceRecord]]) -> ListSink:
    sink = ListSink()
    processor = BatchProcessor(
        classifier=model,
        checkpoint=Checkpoint([sink], NoSource()),
        topic_kinds={"chat": "chat"},
        metrics=Metrics(),
        tasks=["intent", "sentiment"],
    )
    for batch in batches:
        processor.process(batch, RunReport(), threading.Event())
    return sink


def test_the_run_loop_asks_the_model_once_per_distinct_redacted_text() -> None:
    agent = "Thanks for reaching out, let me look into this."
    first = [
        chat(0, "my card 4111 1111 1111 1111 was declined"),
        chat(1, agent, "agent"),
        chat(2, "my card 5500 0000 0000 0004 was declined"),  # the same text once redacted
        chat(3, agent, "agent"),
    ]
    second = [chat(4, agent, "agent"), chat(5, "where is my refund?")]
    inner = LengthClassifier()
    sink = run_batches(CachedClassifier(inner, PredictionCache(10**6)), [first, second])
    assert inner.calls == [
        ["my card [CARD] was declined", agent],  # shortest first, each distinct text once
        ["where is my refund?"],
    ]
    enriched = [r for r in sink.flushed if isinstance(r, EnrichedEvent)]
    assert [e.message_id for e in enriched] == [f"m{i}" for i in range(6)]
    # The answers are what the model gives each text alone, cache or not.
    plain = run_batches(LengthClassifier(), [first, second])
    expected = [r for r in plain.flushed if isinstance(r, EnrichedEvent)]
    assert [(e.sentiment, e.intent) for e in enriched] == [
        (e.sentiment, e.intent) for e in expected
    ]
