"""The run loop's privacy policy: events, enriched output and dead-letter bytes redacted."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from models.words import split_words, word_spans
from pipeline.privacy import PrivacyPolicy, Redactor, move_attention
from pipeline.schema import (
    ChatEvent,
    EnrichedEvent,
    LabelScore,
    ModelRef,
    NewsEvent,
    SourceRef,
    TaskResult,
    WordWeight,
)

T = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CARD = "4111 1111 1111 1111"
RAW = f"my card {CARD} was declined, mail me at jo@example.com"


def chat(text: str = RAW) -> ChatEvent:
    return ChatEvent(
        message_id="1", conversation_id="c1", channel="app", role="customer", text=text, ts=T
    )


def words_of(text: str, weights: list[float] | None = None) -> list[WordWeight]:
    """The display words of ``text`` with offsets, as the classifier logs them."""
    spans = word_spans(text)
    weights = weights or [1.0 / len(spans)] * len(spans)
    return [
        WordWeight(word=text[s:e], weight=x, start=s, end=e)
        for (s, e), x in zip(spans, weights, strict=True)
    ]


def test_a_chat_is_redacted_with_counts_and_the_raw_event_is_untouched() -> None:
    event = chat()
    redacted, counts = PrivacyPolicy().redact_event(event)
    assert isinstance(redacted, ChatEvent)
    assert redacted.text == "my card [CARD] was declined, mail me at [EMAIL]"
    assert counts == {"CARD": 1, "EMAIL": 1}
    assert event.text == RAW and redacted.input_id == event.input_id


def test_news_headline_and_body_are_redacted() -> None:
    news = NewsEvent(
        article_id="a",
        source="wire",
        headline="Call +44 20 7946 0958 now",
        body=f"Card {CARD} leaked.",
        ts=T,
    )
    redacted, counts = PrivacyPolicy().redact_event(news)
    assert isinstance(redacted, NewsEvent)
    assert redacted.headline == "Call [PHONE] now" and redacted.body == "Card [CARD] leaked."
    assert counts == {"PHONE": 1, "CARD": 1}


def test_redaction_off_returns_the_event_itself() -> None:
    event = chat()
    assert PrivacyPolicy(redactor=None).redact_event(event) == (event, {})


def test_attention_moves_onto_the_placeholder_and_keeps_its_total() -> None:
    # my card 4111 1111 1111 1111 was declined , mail me at jo @ example.com
    weights = [0.1, 0.1, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.01, 0.04, 0.05, 0.05, 0.01, 0.01, 0.0]
    weights[-1] = 1.0 - sum(weights[:-1])
    redactor = Redactor()
    findings = redactor.find(RAW)
    redacted = redactor.redact(RAW).text
    moved = move_attention(RAW, findings, redacted, words_of(RAW, weights))
    assert [w.word for w in moved] == split_words(redacted)
    assert [(w.start, w.end) for w in moved] == word_spans(redacted)
    assert math.isclose(sum(w.weight for w in moved), 1.0)
    card = next(w for w in moved if w.word == "[CARD]")
    assert math.isclose(card.weight, sum(weights[2:6]))
    email = next(w for w in moved if w.word == "[EMAIL]")
    assert math.isclose(email.weight, sum(weights[12:]))


def test_words_without_offsets_still_move_and_get_offsets() -> None:
    # Whitespace words, as events logged before offsets held them.
    tokens = RAW.split()
    old = [WordWeight(word=w, weight=1 / len(tokens)) for w in tokens]
    redactor = Redactor()
    redacted = redactor.redact(RAW).text
    moved = move_attention(RAW, redactor.find(RAW), redacted, old)
    assert math.isclose(sum(w.weight for w in moved), 1.0)
    assert all(redacted[w.start : w.end] == w.word for w in moved)
    assert [w.word for w in moved][:4] == ["my", "card", "[CARD]", "was"]


def enriched(text: str, attention: list[WordWeight], evidence: str | None = None) -> EnrichedEvent:
    result = TaskResult(
        label="negative",
        score=0.9,
        top=[LabelScore(label="negative", score=0.9)],
        attention=attention,
        evidence=evidence,
    )
    return EnrichedEvent(
        input_id="chat:1",
        kind="chat",
        source=SourceRef(topic="chat", partition=0, offset=0),
        message_id="1",
        conversation_id="c1",
        channel="app",
        role="customer",
        text=text,
        intent=result,
        sentiment=result,
        model=ModelRef(name="m", version="1", tokenizer_hash="h"),
        event_time=T,
        processed_time=T,
        model_latency_ms=1.0,
        end_to_end_latency_ms=1.0,
    )


def test_raw_classification_still_stores_and_produces_only_redacted_text() -> None:
    policy = PrivacyPolicy(classify_redacted=False)
    out = policy.redact_output(enriched(RAW, words_of(RAW), evidence=f"card {CARD}"), chat())
    dumped = out.model_dump_json()
    assert CARD not in dumped and "jo@example.com" not in dumped and "1111" not in dumped
    assert out.text == "my card [CARD] was declined, mail me at [EMAIL]"
    for result in (out.intent, out.sentiment):
        assert result is not None
        assert [w.word for w in result.attention] == split_words(out.text)
        assert all(out.text[w.start : w.end] == w.word for w in result.attention)
        assert math.isclose(sum(w.weight for w in result.attention), 1.0)
        assert result.evidence == "card [CARD]"


def test_redacted_classification_leaves_the_output_as_it_is() -> None:
    out = enriched("my card [CARD]", words_of("my card [CARD]"))
    assert PrivacyPolicy().redact_output(out, chat()) is out


def test_dead_letter_bytes_are_a_redacted_copy_unless_raw_is_opted_in() -> None:
    value = json.dumps({"text": RAW, "card_as_number": 4111111111111111, "n": 3}).encode()
    kept = PrivacyPolicy().redact_bytes(value)
    assert kept is not None
    assert b"4111" not in kept and b"jo@example.com" not in kept
    assert json.loads(kept)["n"] == 3 and json.loads(kept)["card_as_number"] == "[CARD]"
    broken = b"\xff\xfe" + RAW.encode() + b'", "x'  # neither UTF-8 nor JSON
    kept = PrivacyPolicy().redact_bytes(broken)
    assert kept is not None and b"4111" not in kept and b"[CARD]" in kept
    # An identifier hidden in JSON escapes is still found.
    escaped = b'{"text": "card \\u0034111 1111 1111 1111"}'
    assert b"[CARD]" in (PrivacyPolicy().redact_bytes(escaped) or b"")
    assert PrivacyPolicy(deadletter_raw=True).redact_bytes(value) == value
    # Nothing to redact: the bytes are kept exactly (formatting, escapes, bad UTF-8 and all).
    for clean in (b'{"text":  "hello"}', b"\xff\xfe not utf-8", b'{"n": 1.0e3}'):
        assert PrivacyPolicy().redact_bytes(clean) is clean
    assert PrivacyPolicy().redact_bytes(None) is None


def test_the_evidence_sentence_words_are_moved_onto_its_redacted_words() -> None:
    body = f"Customer card {CARD} was posted online. Shares fell."
    news = NewsEvent(article_id="a", source="wire", headline="Card leak at lender", body=body, ts=T)
    sentence = f"Customer card {CARD} was posted online."
    weights = [0.1, 0.1, 0.15, 0.15, 0.15, 0.15, 0.05, 0.05, 0.05, 0.05]
    out = enriched(news.text, words_of(news.text), evidence=sentence)
    sentiment = out.sentiment.model_copy(update={"evidence_attention": words_of(sentence, weights)})
    out = out.model_copy(update={"sentiment": sentiment, "intent": None})

    redacted = PrivacyPolicy(classify_redacted=False).redact_output(out, news)

    assert "1111" not in redacted.model_dump_json()
    result = redacted.sentiment
    assert result.evidence == "Customer card [CARD] was posted online."
    assert result.evidence_attention is not None
    assert [w.word for w in result.evidence_attention] == split_words(result.evidence)
    assert all(result.evidence[w.start : w.end] == w.word for w in result.evidence_attention)
    assert math.isclose(sum(w.weight for w in result.evidence_attention), 1.0)
    card = next(w for w in result.evidence_attention if w.word == "[CARD]")
    assert math.isclose(card.weight, 0.6)
