"""Long news: classify an article sentence by sentence and aggregate.

A headline with a body is split into sentences (the headline is the first);
each is classified on its own, so no sentence is cut off by the encoder's
maximum length and a single strong sentence is not diluted by boilerplate.

Aggregation, per task: the article's class probabilities are the weighted
mean of the sentences' probabilities, the headline weighing
:data:`HEADLINE_WEIGHT` and every body sentence 1.  The *evidence* is the
sentence contributing most to the winning label (weight x probability of that
label), and it keeps its own word weights, unscaled, for shading on their own.
Word weights are each sentence's word weights scaled by the sentence's share of
the winning label (weight x probability of the label, over all sentences; the
aggregation weights' shares if no sentence gives the label any probability), so
the article's words still sum to one and follow the sentences that carry the
label; their offsets point into
the article text (sentences have their whitespace normalised, so each sentence is
first located in the article: :func:`locate_sentences`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sentencex import segment  # type: ignore[import-untyped]

from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.words import WordWeight

HEADLINE_WEIGHT = 2.0

# sentencex (Wikimedia's rule-based splitter, in Rust, no model, no dependencies), not
# pysbd: 24 of the 25 gold news cases (pysbd 23), 451 of 500 paragraphs of four Financial
# PhraseBank sentences split exactly (pysbd 433), ~190x faster (0.05 vs 9.5 ms per 2,000
# characters) and linear (150,000 characters of "A. " in 0.01 s), so no windows are needed.
# nupunkt scored 494/500 there but takes "call." for an abbreviation ("... on the call.
# Shares fell." stays one sentence), a miss earnings news cannot afford.  decision 0021,
# bench/sentence_split.py.  We cut our own text at its sentence ends, so no character can
# be dropped.
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# re's \s is str.split()'s whitespace, the whitespace split_sentences normalises.
_RUN = re.compile(r"\S+")
_GAP = re.compile(r"\s*")


@dataclass(frozen=True)
class Evidence:
    """The sentence that carried the most weight for a task's label.

    ``words`` are the sentence's own word weights as the classifier gave them for that
    sentence alone (summing to one, not scaled by its share; offsets into ``sentence``),
    so the sentence can be shaded on its own.
    """

    sentence: str
    index: int
    share: float
    words: tuple[WordWeight, ...] = ()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences with sentencex (rule-based, no model download).

    A blank line always ends a sentence; a single line break does not (wire
    copy is hard-wrapped), and runs of whitespace inside a sentence become one
    space.  Sentences are stripped and never empty, and together they hold
    every non-space character of ``text`` in order.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        flat = " ".join(paragraph.split())
        start = 0
        for piece in segment("en", flat) if flat else ():
            end = start + len(piece)
            sentence = flat[start:end].strip()
            if sentence:
                sentences.append(sentence)
            start = end
        if flat[start:].strip():
            sentences.append(flat[start:].strip())
    return sentences


def article_sentences(
    headline: str, body: str | None, max_sentences: int | None = None
) -> tuple[list[str], list[float]]:
    """The headline and the body's sentences, with their aggregation weights.

    With ``max_sentences`` the article is cut to its headline and ``max_sentences - 1``
    body sentences, so one long body cannot make a batch's work unbounded (the lead carries
    the news).  The run loop and the faithfulness check both cut here.
    """
    sentences = [headline.strip()]
    weights = [HEADLINE_WEIGHT]
    for sentence in split_sentences(body or ""):
        sentences.append(sentence)
        weights.append(1.0)
    if max_sentences is not None:
        return sentences[:max_sentences], weights[:max_sentences]
    return sentences, weights


class Placement(NamedTuple):
    """Where a sentence lies in its article: the starts of its non-space runs in both."""

    in_sentence: NDArray[np.intp]
    in_text: NDArray[np.intp]

    def move(self, words: Sequence[WordWeight], scale: float = 1.0) -> list[WordWeight]:
        """``words`` (offsets into the sentence) with offsets into the article.

        A word never holds whitespace, so it lies inside one non-space run and keeps its
        distance from that run's start.  Weights are multiplied by ``scale``.
        """
        starts = np.fromiter((w.start for w in words), dtype=np.intp, count=len(words))
        run = np.searchsorted(self.in_sentence, starts, side="right") - 1
        shifts = (self.in_text - self.in_sentence)[np.maximum(run, 0)].tolist()
        return [
            WordWeight(w.word, w.weight * scale, w.start + shift, w.end + shift)
            for w, shift in zip(words, shifts, strict=True)
        ]


def locate_sentences(text: str, sentences: Sequence[str]) -> list[Placement]:
    """Where each of ``sentences`` lies in ``text``, which they were cut from in order.

    The sentences must hold ``text``'s non-space characters in order (any prefix of
    them, with any whitespace between): as :func:`split_sentences` and
    :func:`article_sentences` give them for the body or for a headline, a line break and
    the body.
    Raises ``ValueError`` when a sentence is not the next stretch of ``text``.
    """
    placements = []
    cursor = 0
    for index, sentence in enumerate(sentences):
        in_sentence, in_text = [], []
        for run in _RUN.finditer(sentence):
            gap = _GAP.match(text, cursor)
            cursor = gap.end() if gap else cursor
            if not text.startswith(run.group(), cursor):
                msg = f"sentence {index} is not the next stretch of the text at {cursor}"
                raise ValueError(msg)
            in_sentence.append(run.start())
            in_text.append(cursor)
            cursor += len(run.group())
        placements.append(
            Placement(np.asarray(in_sentence, dtype=np.intp), np.asarray(in_text, dtype=np.intp))
        )
    return placements


def combine(
    sentences: Sequence[str],
    predictions: Sequence[Prediction],
    weights: Sequence[float],
    labels: Mapping[str, Sequence[str]],
    *,
    text: str | None = None,
) -> tuple[Prediction, dict[str, Evidence]]:
    """Aggregate sentence predictions into one article prediction plus evidence per task.

    ``labels`` gives each task's label list, to look up every sentence's
    probability of each label in its ``top`` (labels outside a sentence's
    top-k count as probability 0 there).  ``text`` is the article the sentences were
    cut from (see :func:`locate_sentences`): the article's words get offsets into it;
    without it, into the sentences joined by single spaces.
    """
    if not predictions or not len(predictions) == len(weights) == len(sentences):
        msg = f"{len(predictions)} sentence predictions for {len(weights)} weights"
        raise ValueError(msg)
    placements = locate_sentences(" ".join(sentences) if text is None else text, sentences)
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
        # Words follow the sentences that carry the label (the evidence's measure), not the
        # aggregation weights: with the latter the headline (weight 2) kept the most weight
        # however neutral it was, and on articles padded with neutral sentences the logged
        # words fell to 0.4x those of this scaling (bench/RESULTS.md, long news).
        carried = sum(contributions)
        shares = (
            [c / carried for c in contributions] if carried > 0 else [w / total for w in weights]
        )
        words = tuple(
            word
            for prediction, share, placement in zip(predictions, shares, placements, strict=True)
            for word in placement.move(prediction[task].words, share)
        )
        combined[task] = TaskPrediction(label, score, tuple(ranked[:3]), words)
        evidence[task] = Evidence(
            sentence=sentences[best],
            index=best,
            share=contributions[best] / (sum(contributions) or 1.0),
            words=tuple(predictions[best][task].words),
        )
    return combined, evidence


def classify_units(
    classifier: TextClassifier,
    plans: Sequence[tuple[Sequence[str], Sequence[float]]],
    texts: Sequence[str],
    tasks: Sequence[str],
    *,
    max_texts_per_forward: int = 512,
) -> list[tuple[Prediction, dict[str, Evidence]]]:
    """Classify many texts, each one unit or an article's sentences, and combine articles.

    ``plans[i]`` is what ``texts[i]`` is read as: ``([text], [1.0])`` for a short text, or
    :func:`article_sentences` of an article.  All units go through the classifier together,
    shortest first and at most ``max_texts_per_forward`` per call, so padding stays small
    and a batch's work is bounded; each article is then :func:`combine`-d.
    """
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
    for text, (sentences, weights) in zip(texts, plans, strict=True):
        chunk = predictions[start : start + len(sentences)]
        start += len(sentences)
        if len(sentences) == 1:
            out.append((_in_text(chunk[0], sentences[0], text), {}))
        else:
            out.append(combine(sentences, chunk, weights, labels, text=text))
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
