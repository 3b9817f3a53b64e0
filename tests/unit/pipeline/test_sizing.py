import random
from datetime import UTC, datetime

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from models.words import word_spans
from pipeline.schema import (
    EnrichedEvent,
    LabelScore,
    ModelRef,
    SourceRef,
    TaskResult,
    WordWeight,
)
from pipeline.stream.sizing import RECORD_OVERHEAD_BYTES, fit_to_size, record_size

LIMIT = 1_000_000
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
VOCABULARY = (
    "Northwind Bank said on Tuesday it would raise its quarterly dividend by 10% after "
    "third-quarter profit beat analysts' estimates, helped by higher net interest income "
    "and lower loan-loss provisions. Shares rose 3.2% in early trading in Zürich and São Paulo."
).split()


def article_body(chars: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < chars:
        words.append(rng.choice(VOCABULARY))
        size += len(words[-1]) + 1
    return " ".join(words)[:chars]


def attention_for(text: str, seed: int = 4) -> list[WordWeight]:
    """One entry per display word with its offsets, weights summing to one, as
    models.long_text.combine gives."""
    rng = random.Random(seed)
    spans = word_spans(text)
    raw = [rng.random() ** 3 for _ in spans]
    total = sum(raw)
    return [
        WordWeight(word=text[s:e], weight=x / total, start=s, end=e)
        for (s, e), x in zip(spans, raw)
    ]


def task(text: str, attention: list[WordWeight] | None = None) -> TaskResult:
    return TaskResult(
        label="positive",
        score=0.91,
        top=[LabelScore(label="positive", score=0.91), LabelScore(label="neutral", score=0.07)],
        attention=attention_for(text) if attention is None else attention,
        evidence=text[:300],
    )


def news(body: str, **fields) -> EnrichedEvent:
    text = "Northwind Bank raises dividend\n" + body
    return EnrichedEvent(
        input_id="news:hw-2026-11-25-0187",
        kind="news",
        source=SourceRef(topic="news", partition=2, offset=41_726),
        article_id="hw-2026-11-25-0187",
        news_source="Harbor Wire",
        tickers=["NWB"],
        text=text,
        sentiment=fields.pop("sentiment", None) or task(text),
        model=ModelRef(name="default", version="2026.11.1", tokenizer_hash="9f2c1e"),
        event_time=NOW,
        processed_time=NOW,
        model_latency_ms=812.5,
        end_to_end_latency_ms=1_204.0,
        **fields,
    )


def kafka_estimate(event: EnrichedEvent) -> int:
    """kafka-python's own size check for what the enriched topic sink sends."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(
        event.input_id.encode("utf-8"), event.model_dump_json().encode("utf-8"), []
    )


@pytest.fixture(scope="module")
def long_article() -> EnrichedEvent:
    return news(article_body(150_000))


@pytest.mark.slow
def test_a_long_article_is_trimmed_to_fit_and_marked(long_article):
    original = long_article.sentiment.attention
    assert kafka_estimate(long_article) > LIMIT  # the record the topic flush failed on

    fitted = fit_to_size(long_article, LIMIT)

    assert fitted is not None
    assert record_size(fitted) <= LIMIT
    assert kafka_estimate(fitted) <= LIMIT
    kept = fitted.sentiment.attention
    assert 0 < len(kept) < len(original)
    assert fitted.sentiment.attention_truncated == len(original) - len(kept)
    # Only attention changes.
    assert fitted.model_dump(exclude={"sentiment"}) == long_article.model_dump(
        exclude={"sentiment"}
    )
    assert fitted.sentiment.model_dump(
        exclude={"attention", "attention_truncated"}
    ) == long_article.sentiment.model_dump(exclude={"attention", "attention_truncated"})
    assert long_article.sentiment.attention_truncated is None


def test_the_kept_words_are_the_highest_weighted_in_their_order(long_article):
    original = long_article.sentiment.attention
    fitted = fit_to_size(long_article, LIMIT)
    kept = fitted.sentiment.attention

    by_weight = sorted(range(len(original)), key=lambda i: -original[i].weight)
    top = sorted(by_weight[: len(kept)])
    assert kept == [original[i] for i in top]
    # Kept words keep their offsets, through the JSON the topic carries.
    again = EnrichedEvent.model_validate_json(fitted.model_dump_json())
    assert all(again.text[w.start : w.end] == w.word for w in again.sentiment.attention)
    # As few removed as needed: the next word by weight would not have fitted.
    one_more = sorted(by_weight[: len(kept) + 1])
    bigger = fitted.model_copy(
        update={
            "sentiment": fitted.sentiment.model_copy(
                update={"attention": [original[i] for i in one_more]}
            )
        }
    )
    assert record_size(bigger) > LIMIT >= record_size(fitted)


def test_a_small_event_is_returned_unchanged():
    event = news("Up 10%.")
    assert fit_to_size(event, LIMIT) is event
    assert event.sentiment.attention_truncated is None


@pytest.mark.slow
def test_an_event_whose_text_alone_is_too_large_gives_none():
    event = news(article_body(LIMIT), sentiment=task("x", attention=[]))
    assert fit_to_size(event, LIMIT) is None
    with_words = news(article_body(LIMIT))
    assert fit_to_size(with_words, LIMIT) is None


def test_every_task_is_trimmed_and_a_short_list_is_left_alone():
    text = article_body(60_000, seed=7)
    intent_words = attention_for("card declined pharmacy")
    event = news(text).model_copy(update={"intent": task(text, attention=intent_words)})
    limit = record_size(event) - 50_000

    fitted = fit_to_size(event, limit)

    assert fitted is not None and record_size(fitted) <= limit
    assert fitted.intent.attention == intent_words
    assert fitted.intent.attention_truncated is None
    assert fitted.sentiment.attention_truncated == len(event.sentiment.attention) - len(
        fitted.sentiment.attention
    )
    assert fitted.sentiment.attention_truncated > 0

    both_long = event.model_copy(update={"intent": task(text, attention=attention_for(text, 9))})
    fitted = fit_to_size(both_long, limit)
    assert fitted is not None and record_size(fitted) <= limit
    assert fitted.intent.attention_truncated > 0
    assert fitted.sentiment.attention_truncated > 0


def test_trimming_again_counts_from_the_original(long_article):
    once = fit_to_size(long_article, LIMIT)
    twice = fit_to_size(once, 800_000)
    assert twice is not None and record_size(twice) <= 800_000
    original = len(long_article.sentiment.attention)
    assert twice.sentiment.attention_truncated == original - len(twice.sentiment.attention)
    assert fit_to_size(once, LIMIT) is once


def test_the_size_counts_utf8_bytes_key_and_overhead():
    event = news("Zürich " * 10)
    value = len(event.model_dump_json().encode("utf-8"))
    assert value > len(event.model_dump_json())  # non-ASCII takes more than one byte
    assert record_size(event) == value + len(event.input_id.encode()) + RECORD_OVERHEAD_BYTES
    assert kafka_estimate(event) <= record_size(event)
    assert fit_to_size(event, record_size(event)) is event
    assert fit_to_size(event, record_size(event) - 1) is not event


def with_evidence_words(event: EnrichedEvent) -> EnrichedEvent:
    sentence = event.sentiment.evidence or ""
    words = attention_for(sentence, seed=5)
    return event.model_copy(
        update={"sentiment": event.sentiment.model_copy(update={"evidence_attention": words})}
    )


def test_the_evidence_shading_is_kept_whole_while_article_attention_is_trimmed(long_article):
    event = with_evidence_words(long_article)
    fitted = fit_to_size(event, LIMIT)
    assert fitted is not None and record_size(fitted) <= LIMIT
    assert fitted.sentiment.attention_truncated
    assert fitted.sentiment.evidence_attention == event.sentiment.evidence_attention


def test_the_evidence_shading_goes_whole_when_no_attention_would_fit():
    def bare(chars: int) -> EnrichedEvent:
        sentiment = task("x", attention=[]).model_copy(update={"evidence": evidence})
        return news(article_body(chars), sentiment=sentiment)

    evidence = article_body(3_000, seed=6)
    extra = record_size(with_evidence_words(bare(0))) - record_size(bare(0))
    # A body that leaves room for the event without the evidence words, not with them.
    chars = LIMIT - record_size(bare(0)) - extra // 2
    for _ in range(3):
        chars += LIMIT - extra // 2 - record_size(bare(chars))
    event = with_evidence_words(bare(chars))
    assert record_size(bare(chars)) <= LIMIT < record_size(event)
    fitted = fit_to_size(event, LIMIT)
    assert fitted is not None and fitted.sentiment.evidence_attention is None
    assert fitted.sentiment.evidence == evidence and fitted.text == event.text
