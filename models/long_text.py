"""Long news: classify an article sentence by sentence and aggregate.

A headline with a body is split into sentences (the headline is the first);
each is classified on its own, so no sentence is cut off by the encoder's
maximum length and a single strong sentence is not diluted by boilerplate.

Aggregation, per task: the article's class probabilities are the weighted
mean of the sentences' probabilities, the headline weighing
:data:`HEADLINE_WEIGHT` and every body sentence 1.  The *evidence* is the
sentence contributing most to the winning label (weight x probability of that
label).  Word weights are each sentence's word weights scaled by the
sentence's share of the total weight, so the article's words still sum to one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.classifier import Prediction, TaskPrediction
from models.words import WordWeight

HEADLINE_WEIGHT = 2.0
#: Sentence ends: . ! ? followed by space and an upper-case letter, digit or quote;
#: not after common abbreviations or single initials.
_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(]?[A-Z0-9])")
_ABBREVIATIONS = ("Inc.", "Corp.", "Ltd.", "Co.", "Mr.", "Ms.", "Dr.", "St.", "vs.", "approx.")


@dataclass(frozen=True)
class Evidence:
    """The sentence that carried the most weight for a task's label."""

    sentence: str
    index: int
    share: float


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (a light rule-based splitter, no model download)."""
    pieces: list[str] = []
    for chunk in _END.split(text.strip()):
        if pieces and (pieces[-1].endswith(_ABBREVIATIONS) or re.search(r"\b[A-Z]\.$", pieces[-1])):
            pieces[-1] = f"{pieces[-1]} {chunk}"
        elif chunk.strip():
            pieces.append(chunk.strip())
    return pieces


def article_sentences(headline: str, body: str | None) -> tuple[list[str], list[float]]:
    """The headline and the body's sentences, with their aggregation weights."""
    sentences = [headline.strip()]
    weights = [HEADLINE_WEIGHT]
    for sentence in split_sentences(body or ""):
        sentences.append(sentence)
        weights.append(1.0)
    return sentences, weights


def combine(
    sentences: Sequence[str],
    predictions: Sequence[Prediction],
    weights: Sequence[float],
    labels: Mapping[str, Sequence[str]],
) -> tuple[Prediction, dict[str, Evidence]]:
    """Aggregate sentence predictions into one article prediction plus evidence per task.

    ``labels`` gives each task's label list, to look up every sentence's
    probability of each label in its ``top`` (labels outside a sentence's
    top-k count as probability 0 there).
    """
    if not predictions or not len(predictions) == len(weights) == len(sentences):
        msg = f"{len(predictions)} sentence predictions for {len(weights)} weights"
        raise ValueError(msg)
    total = float(sum(weights))
    combined: Prediction = {}
    evidence: dict[str, Evidence] = {}
    for task in predictions[0]:
        scores = {label: 0.0 for label in labels[task]}
        per_sentence = []
        for prediction, weight in zip(predictions, weights, strict=True):
            probs = dict(prediction[task].top)
            per_sentence.append(probs)
            for label, p in probs.items():
                scores[label] += weight * p / total
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        label, score = ranked[0]
        contributions = [
            w * probs.get(label, 0.0) for probs, w in zip(per_sentence, weights, strict=True)
        ]
        best = max(range(len(contributions)), key=contributions.__getitem__)
        words = tuple(
            WordWeight(word.word, word.weight * weight / total)
            for prediction, weight in zip(predictions, weights, strict=True)
            for word in prediction[task].words
        )
        combined[task] = TaskPrediction(label, score, tuple(ranked[:3]), words)
        evidence[task] = Evidence(
            sentence=sentences[best],
            index=best,
            share=contributions[best] / (sum(contributions) or 1.0),
        )
    return combined, evidence
