"""Turn a validated event and the classifier's prediction into an enriched event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from consumers.source import SourceRecord
from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.long_text import Evidence, article_sentences, classify_units
from models.saving import ModelInfo
from models.words import WordWeight as ModelWordWeight
from pipeline.schema import (
    ChatEvent,
    EnrichedEvent,
    InputEvent,
    LabelScore,
    ModelRef,
    NewsEvent,
    SourceRef,
    TaskResult,
    WordWeight,
)

INTENT = "intent"
SENTIMENT = "sentiment"


def tasks_for(event: InputEvent) -> tuple[str, ...]:
    """Intent is a customer's; agents' turns and news get sentiment only."""
    if isinstance(event, ChatEvent) and event.role == "customer":
        return (INTENT, SENTIMENT)
    return (SENTIMENT,)


def _words(words: Sequence[ModelWordWeight]) -> list[WordWeight]:
    return [WordWeight(word=w.word, weight=w.weight, start=w.start, end=w.end) for w in words]


def _result(
    prediction: TaskPrediction, faithful: bool | None, evidence: Evidence | None = None
) -> TaskResult:
    return TaskResult(
        label=prediction.label,
        score=prediction.score,
        top=[LabelScore(label=label, score=score) for label, score in prediction.top],
        attention=_words(prediction.words),
        evidence=evidence.sentence if evidence else None,
        evidence_attention=_words(evidence.words) if evidence else None,
        attention_faithful=faithful,
    )


def units(event: InputEvent, max_sentences: int = 64) -> tuple[list[str], list[float]]:
    """What the classifier reads for ``event``: one text, or an article's first sentences."""
    if isinstance(event, NewsEvent) and event.body:
        return article_sentences(event.headline, event.body, max_sentences)
    return [event.text], [1.0]


def classify_events(
    classifier: TextClassifier,
    events: Sequence[InputEvent],
    tasks: Sequence[str],
    *,
    max_sentences: int = 64,
    max_texts_per_forward: int = 512,
) -> list[tuple[Prediction, dict[str, Evidence]]]:
    """Classify a batch; long articles are split and aggregated (:mod:`models.long_text`)."""
    return classify_units(
        classifier,
        [units(e, max_sentences) for e in events],
        [e.text for e in events],
        tasks,
        max_texts_per_forward=max_texts_per_forward,
    )


def enrich(
    event: InputEvent,
    record: SourceRecord,
    prediction: Prediction,
    model: ModelInfo,
    processed_time: datetime,
    model_latency_ms: float,
    evidence: Mapping[str, Evidence] | None = None,
) -> EnrichedEvent:
    """Combine input, prediction and timings into the versioned output event."""
    source = SourceRef(topic=record.topic, partition=record.partition, offset=record.offset)
    model_ref = ModelRef(
        name=model.name, version=model.version, tokenizer_hash=model.tokenizer_hash
    )
    latency_ms = (processed_time - event.ts).total_seconds() * 1000.0
    found = evidence or {}
    faithful = model.attention_faithful
    sentiment = _result(prediction[SENTIMENT], faithful.get(SENTIMENT), found.get(SENTIMENT))
    if isinstance(event, ChatEvent):
        intent = prediction.get(INTENT) if INTENT in tasks_for(event) else None
        return EnrichedEvent(
            input_id=event.input_id,
            kind="chat",
            source=source,
            message_id=event.message_id,
            conversation_id=event.conversation_id,
            channel=event.channel,
            role=event.role,
            text=event.text,
            intent=_result(intent, faithful.get(INTENT)) if intent else None,
            sentiment=sentiment,
            model=model_ref,
            event_time=event.ts,
            processed_time=processed_time,
            model_latency_ms=model_latency_ms,
            end_to_end_latency_ms=latency_ms,
        )
    return EnrichedEvent(
        input_id=event.input_id,
        kind="news",
        source=source,
        article_id=event.article_id,
        news_source=event.source,
        tickers=list(event.tickers),
        text=event.text,
        sentiment=sentiment,
        model=model_ref,
        event_time=event.ts,
        processed_time=processed_time,
        model_latency_ms=model_latency_ms,
        end_to_end_latency_ms=latency_ms,
    )
