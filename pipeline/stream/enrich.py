"""Turn a validated event and the classifier's prediction into an enriched event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from consumers.source import SourceRecord
from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.long_text import Evidence, article_sentences, combine, locate_sentences
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
    """What the classifier reads for ``event``: one text, or an article's first sentences.

    An article is cut to its headline and ``max_sentences - 1`` body sentences, so one long
    body cannot make a batch's work unbounded (the lead carries the news).
    """
    if isinstance(event, NewsEvent) and event.body:
        sentences, weights = article_sentences(event.headline, event.body)
        return sentences[:max_sentences], weights[:max_sentences]
    return [event.text], [1.0]


def classify_events(
    classifier: TextClassifier,
    events: Sequence[InputEvent],
    tasks: Sequence[str],
    *,
    max_sentences: int = 64,
    max_texts_per_forward: int = 512,
) -> list[tuple[Prediction, dict[str, Evidence]]]:
    """Classify a batch; long articles are split and aggregated; forward passes are bounded."""
    plans = [units(e, max_sentences) for e in events]
    flat = [sentence for sentences, _ in plans for sentence in sentences]
    # Shortest first, so each forward pass pads little (characters stand in for tokens
    # here; the classifier sorts each call by its own token counts again).
    order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
    by_unit: list[Prediction | None] = [None] * len(flat)
    for first in range(0, len(order), max_texts_per_forward):
        part = order[first : first + max_texts_per_forward]
        for index, prediction in zip(
            part, classifier.predict([flat[i] for i in part], tasks), strict=True
        ):
            by_unit[index] = prediction
    predictions = [p for p in by_unit if p is not None]
    if len(predictions) != len(flat):
        msg = f"the classifier answered {len(predictions)} of {len(flat)} texts"
        raise RuntimeError(msg)
    labels = {t.name: t.labels for t in classifier.info.tasks}
    out: list[tuple[Prediction, dict[str, Evidence]]] = []
    start = 0
    for event, (sentences, weights) in zip(events, plans, strict=True):
        chunk = predictions[start : start + len(sentences)]
        start += len(sentences)
        if len(sentences) == 1:
            out.append((_in_text(chunk[0], sentences[0], event.text), {}))
        else:
            out.append(combine(sentences, chunk, weights, labels, text=event.text))
    return out


def _in_text(prediction: Prediction, sentence: str, text: str) -> Prediction:
    """``prediction`` of ``sentence`` with its words' offsets moved into ``text``.

    An article cut to its headline (``max_sentences=1``) is classified on the stripped
    headline alone; the logged offsets must still point into the event's text.
    """
    if sentence == text:
        return prediction
    placement = locate_sentences(text, [sentence])[0]
    return {
        task: replace(answer, words=tuple(placement.move(answer.words)))
        for task, answer in prediction.items()
    }


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
