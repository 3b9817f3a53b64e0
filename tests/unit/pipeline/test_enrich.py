"""Classified events become enriched events whose words point into the stored text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from consumers.source import SourceRecord
from models.classifier import Prediction, TaskPrediction
from models.saving import ModelInfo, TaskSpec
from models.words import merge_word_pieces, split_words, word_spans
from pipeline.schema import ChatEvent, EnrichedEvent, NewsEvent
from pipeline.stream.enrich import classify_events, enrich

T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LABELS = ("negative", "neutral", "positive")


class UniformClassifier:
    """Every display word of a text weighs the same; "fell" makes a sentence negative."""

    info = ModelInfo(
        name="uniform",
        version="1",
        tokenizer_hash="h",
        max_length=48,
        tasks=(TaskSpec("sentiment", LABELS), TaskSpec("intent", ("card", "refund"))),
        encoder_source="none",
        created_at="2026-11-25",
    )

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        out = []
        for text in texts:
            spans = word_spans(text)
            words = tuple(merge_word_pieces(text, spans, [1 / max(1, len(spans))] * len(spans)))
            label = "negative" if "fell" in text else "neutral"
            top = ((label, 0.9), *((other, 0.05) for other in LABELS if other != label))
            out.append({t: TaskPrediction(label, 0.9, top, words) for t in tasks or ["sentiment"]})
        return out


def record(topic: str) -> SourceRecord:
    return SourceRecord(topic, 0, 7, b"k", b"{}", 1_700_000_000_000)


def enriched(event, max_sentences: int = 64) -> EnrichedEvent:
    classifier = UniformClassifier()
    tasks = ["intent", "sentiment"] if isinstance(event, ChatEvent) else ["sentiment"]
    ((prediction, evidence),) = classify_events(
        classifier, [event], tasks, max_sentences=max_sentences
    )
    out = enrich(event, record("t"), prediction, classifier.info, T, 1.0, evidence)
    # What the store and the topic keep: the JSON round trip keeps the offsets.
    return EnrichedEvent.model_validate_json(out.model_dump_json())


def assert_words_hold_their_text(words, text) -> None:
    assert words
    assert all(w.start is not None and text[w.start : w.end] == w.word for w in words)


def test_chat_words_are_split_from_punctuation_with_offsets():
    event = ChatEvent(
        message_id="m1",
        conversation_id="c1",
        channel="app",
        role="customer",
        text="My card was declined, again!! 👍 no no",
        ts=T,
    )
    out = enriched(event)
    for result in (out.intent, out.sentiment):
        assert result is not None
        assert [w.word for w in result.attention] == split_words(out.text)
        assert_words_hold_their_text(result.attention, out.text)
        assert sum(w.weight for w in result.attention) == pytest.approx(1.0)


def test_article_words_point_into_headline_and_body_as_stored():
    body = (
        "Northwind said profit rose 12%.It fell   later, analysts said.\n"
        "Hard-wrapped wire\ncopy goes on.\n\nShares fell 3.5% in Zürich."
    )
    event = NewsEvent(article_id="a", source="wire", headline="NWB  beats", body=body, ts=T)
    out = enriched(event)
    words = out.sentiment.attention
    assert out.text == f"NWB  beats\n{body}"
    assert [w.word for w in words] == split_words(out.text)
    assert_words_hold_their_text(words, out.text)
    assert sum(w.weight for w in words) == pytest.approx(1.0)
    # The evidence sentence's own words count from the start of the sentence.
    assert out.sentiment.evidence is not None
    assert_words_hold_their_text(out.sentiment.evidence_attention, out.sentiment.evidence)


def test_an_article_cut_to_its_headline_points_into_the_event_text():
    event = NewsEvent(
        article_id="a", source="wire", headline="Shares fell, again", body="Body text.", ts=T
    )
    words = enriched(event, max_sentences=1).sentiment.attention
    assert [w.word for w in words] == ["Shares", "fell", ",", "again"]
    assert_words_hold_their_text(words, event.text)


def test_the_evidence_sentence_keeps_its_own_shading_summing_to_one():
    body = "Shares fell after the call. Costs fell too. Sales fell."
    event = NewsEvent(article_id="a", source="wire", headline="NWB reports", body=body, ts=T)
    result = enriched(event).sentiment
    assert result.evidence == "Shares fell after the call."
    assert result.evidence_attention is not None
    assert [w.word for w in result.evidence_attention] == split_words(result.evidence)
    # Its own weights (1/7 each here), not the article's (scaled by the sentence's share).
    assert sum(w.weight for w in result.evidence_attention) == pytest.approx(1.0)
    headline_only = NewsEvent(article_id="b", source="wire", headline="NWB fell", ts=T)
    assert enriched(headline_only).sentiment.evidence_attention is None
