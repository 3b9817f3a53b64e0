"""Is the article-level attention of long news faithful?  ERASER across a whole article.

A news article with a body is classified the way the run loop does it
(:mod:`models.long_text`): the headline and the body's sentences are classified one by
one, the article's probabilities are their weighted mean (headline weight 2) and the
logged word weights are each sentence's weights times the sentence's share of the
winning label.  Here those
logged article weights rank *all* the article's words; the top ``k`` % are removed from
whichever sentences hold them (or kept alone) and the article is classified again through
the same sentence path, so comprehensiveness and sufficiency (see
:mod:`models.explain.faithfulness`) measure exactly what an analyst is shown.

Four rankings are compared:

* ``attention``: the logged article-level weights;
* ``weight_share``: each sentence's own word weights scaled by the sentence's share of the
  aggregation weight (headline 2, body sentences 1) instead of its share of the label:
  what the pipeline logged before this was measured, kept as the comparison;
* ``sentence_uniform``: each sentence's share spread evenly over its words (ties in
  random order): the article's sentence choice without the within-sentence weights, so
  ``attention`` beating it means the word weights add something beyond picking sentences;
* ``random``: a seeded random permutation of the article's words.

A perturbed sentence is the sentence with the other words deleted (``delete_words``, as
for single texts); a sentence left without words drops out of the article, weight and
all; an article left without any word is classified as one empty text.  Each distinct
sentence is classified once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.data import seed as seed_data
from models.explain.faithfulness import (
    DEFAULT_KS,
    ERASER_BINS,
    RANDOM,
    FaithfulnessResult,
    delete_words,
    faithfulness,
    random_rankings,
    ranking_from_scores,
    render_markdown,
)
from models.long_text import article_sentences, combine
from models.words import word_spans

ATTENTION = "attention"
WEIGHT_SHARE = "weight_share"
SENTENCE_UNIFORM = "sentence_uniform"
#: The rankings :func:`article_faithfulness` compares, in the order it reports them.
ARTICLE_METHODS: tuple[str, ...] = (ATTENTION, WEIGHT_SHARE, SENTENCE_UNIFORM, RANDOM)
#: Sentences of one article read (the run loop's ``max_sentences`` default).
MAX_SENTENCES = 64
#: Sentences per ``classifier.predict`` call.
PREDICT_CHUNK = 512

# faithfulness() perturbs texts word by word and scores each distinct text once.
# An article is handed to it as one key per word, "a<article>w<word>", so the prob_fn
# can tell which words of which sentences were kept and rebuild the sentences; keys are
# letters and digits only, so no word splitter cuts them.
_KEY = re.compile(r"a(\d+)w(\d+)")


@dataclass(frozen=True)
class Article:
    """A news article as the pipeline reads it: a headline and an optional body."""

    headline: str
    body: str | None = None


@dataclass(frozen=True)
class _Plan:
    """An article as classified: its sentences, their weights and each one's word spans."""

    sentences: list[str]
    weights: list[float]
    spans: list[list[tuple[int, int]]]


@dataclass(frozen=True)
class ArticleFaithfulness:
    """ERASER scores per ranking over ``n`` articles, and what the articles were like.

    ``labels`` are the model's article labels, one per article given, as logged.
    """

    results: dict[str, FaithfulnessResult]
    task: str
    n: int
    mean_sentences: float
    mean_words: float
    labels: tuple[str, ...] = ()


def seed_articles() -> list[Article]:
    """The seed news items that have a body (headline + 3 sentences each)."""
    return [Article(n.headline, n.body) for n in seed_data.load_news() if n.body]


def load_articles(path: Path) -> list[Article]:
    """Articles from a JSON Lines file with ``headline`` and optional ``body`` fields."""
    articles = []
    for number, record in seed_data.read_records(path):
        headline, body = record.get("headline"), record.get("body")
        if not isinstance(headline, str) or not headline.strip():
            msg = f"{path}:{number}: needs a non-empty 'headline'"
            raise ValueError(msg)
        if body is not None and not isinstance(body, str):
            msg = f"{path}:{number}: 'body' must be a string"
            raise ValueError(msg)
        articles.append(Article(headline, body or None))
    return articles


def article_faithfulness(
    classifier: TextClassifier,
    articles: Sequence[Article],
    task: str = "sentiment",
    *,
    ks: Sequence[float] = DEFAULT_KS,
    aopc_bins: Sequence[float] = ERASER_BINS,
    seed: int = 0,
    max_sentences: int = MAX_SENTENCES,
    progress: bool = False,
) -> ArticleFaithfulness:
    """Comprehensiveness and sufficiency of the article-level rankings, through the news path.

    ``classifier`` is the one the run loop serves (any :class:`TextClassifier`); each
    article is cut to its first ``max_sentences`` sentences, as the run loop cuts it.
    """
    plans = [_plan(a, max_sentences) for a in articles]
    path = _ArticlePath(classifier, task, plans)
    logged = path.article_predictions(plans)
    keys: list[str] = []
    rankings: dict[str, list[list[int]]] = {m: [] for m in ARTICLE_METHODS}
    counts = [sum(len(s) for s in plan.spans) for plan in plans]
    shuffles = random_rankings(counts, seed)
    for i, (plan, prediction) in enumerate(zip(plans, logged, strict=True)):
        keys.append(" ".join(f"a{i}w{j}" for j in range(counts[i])))
        sentences = path.sentence_predictions(plan)
        rankings[ATTENTION].append(ranking_from_scores(_logged_scores(plan, prediction, sentences)))
        shares = [w / math.fsum(plan.weights) for w in plan.weights]
        rankings[WEIGHT_SHARE].append(ranking_from_scores(_scaled_scores(plan, sentences, shares)))
        uniform = _uniform_scores(plan)
        # Ties (the words of one sentence) in random order, not text order.
        rankings[SENTENCE_UNIFORM].append(sorted(shuffles[i], key=lambda j: -uniform[j]))
    rankings[RANDOM] = random_rankings(counts, seed + 1)
    results = faithfulness(path, keys, rankings, ks, aopc_bins, progress=progress)
    used = [i for i, c in enumerate(counts) if c]
    return ArticleFaithfulness(
        results=results,
        task=task,
        n=len(used),
        mean_sentences=_mean([len(plans[i].sentences) for i in used]),
        mean_words=_mean([counts[i] for i in used]),
        labels=tuple(p.label for p in logged),
    )


def render_article_markdown(report: ArticleFaithfulness) -> str:
    """The faithfulness table of the articles, with the rankings side by side at 20 %."""
    table = render_markdown(report.results, f"{report.task}, news articles")
    lines = [
        table.rstrip("\n"),
        _versus(report.results, ATTENTION, SENTENCE_UNIFORM),
        _versus(report.results, ATTENTION, WEIGHT_SHARE),
        "",
        f"{report.n} articles, {report.mean_sentences:.1f} sentences and "
        f"{report.mean_words:.1f} words each on average; words ranked by the logged "
        "article-level weights (sentence weights x the sentence's share of the label) and "
        "removed across the "
        "whole article.",
        "",
    ]
    return "\n".join(lines)


class _ArticlePath:
    """``prob_fn`` for :func:`faithfulness`: word keys in, the article path's probabilities out.

    Probabilities come from the article's ``top`` labels, as ``combine`` ranks them (a
    label outside them counts 0; sentiment's three labels are always all there).
    """

    def __init__(self, classifier: TextClassifier, task: str, plans: Sequence[_Plan]) -> None:
        self._classifier = classifier
        self._task = task
        self._labels = list(_labels(classifier, task))
        self._plans = list(plans)
        self._cache: dict[str, TaskPrediction] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        plans = [self._perturbed(text) for text in texts]
        rows = []
        for prediction in self.article_predictions(plans):
            probs = dict(prediction.top)
            rows.append([probs.get(label, 0.0) for label in self._labels])
        return torch.tensor(rows, dtype=torch.float32)

    def article_predictions(self, plans: Sequence[_Plan]) -> list[TaskPrediction]:
        """Each plan classified sentence by sentence and combined as the pipeline does."""
        self._classify({s for plan in plans for s in plan.sentences})
        out = []
        for plan in plans:
            sentences: list[Prediction] = [{self._task: self._cache[s]} for s in plan.sentences]
            combined, _ = combine(
                plan.sentences, sentences, plan.weights, {self._task: self._labels}
            )
            out.append(combined[self._task])
        return out

    def sentence_predictions(self, plan: _Plan) -> list[TaskPrediction]:
        """Each (already classified) sentence's own prediction."""
        return [self._cache[s] for s in plan.sentences]

    def _classify(self, sentences: set[str]) -> None:
        todo = sorted(sentences - self._cache.keys(), key=len)
        for start in range(0, len(todo), PREDICT_CHUNK):
            chunk = todo[start : start + PREDICT_CHUNK]
            for sentence, prediction in zip(
                chunk, self._classifier.predict(chunk, [self._task]), strict=True
            ):
                self._cache[sentence] = prediction[self._task]

    def _perturbed(self, text: str) -> _Plan:
        """The article behind a perturbed key text, rebuilt from the words it keeps."""
        found = [(int(a), int(w)) for a, w in _KEY.findall(text)]
        if not found:
            return _planned([""], [1.0])
        article = found[0][0]
        if any(a != article for a, _ in found):
            msg = f"a perturbed text mixes the words of several articles: {text[:80]!r}"
            raise ValueError(msg)
        kept = {w for _, w in found}
        plan = self._plans[article]
        sentences: list[str] = []
        weights: list[float] = []
        start = 0
        for sentence, weight, spans in zip(plan.sentences, plan.weights, plan.spans, strict=True):
            drop = {j for j in range(len(spans)) if start + j not in kept}
            start += len(spans)
            if len(drop) < len(spans):
                sentences.append(delete_words(sentence, spans, drop))
                weights.append(weight)
        return _planned(sentences, weights)


def _plan(article: Article, max_sentences: int) -> _Plan:
    return _planned(*article_sentences(article.headline, article.body, max_sentences))


def _planned(sentences: list[str], weights: list[float]) -> _Plan:
    return _Plan(sentences, weights, [word_spans(s) for s in sentences])


def _labels(classifier: TextClassifier, task: str) -> tuple[str, ...]:
    for spec in classifier.info.tasks:
        if spec.name == task:
            return spec.labels
    msg = f"unknown task {task!r}; the model has {[t.name for t in classifier.info.tasks]}"
    raise ValueError(msg)


def _logged_scores(
    plan: _Plan, prediction: TaskPrediction, sentences: Sequence[TaskPrediction]
) -> list[float]:
    """The logged article weight of every word of ``plan``, 0 where none was logged.

    The article's logged words are its sentences' logged words in order (``combine``
    concatenates them), as many from each sentence as the sentence's own prediction has.
    """
    logged = [(w.word, w.weight) for w in prediction.words]
    counts = [len(p.words) for p in sentences]
    if sum(counts) != len(logged):
        msg = f"{len(logged)} logged words but the sentences gave {sum(counts)}"
        raise ValueError(msg)
    starts = [sum(counts[:s]) for s in range(len(counts))]
    return _match(plan, [logged[a : a + n] for a, n in zip(starts, counts, strict=True)])


def _scaled_scores(
    plan: _Plan, sentences: Sequence[TaskPrediction], shares: Sequence[float]
) -> list[float]:
    """Every word's weight in its own sentence times the sentence's share."""
    return _match(
        plan,
        [
            [(w.word, w.weight * share) for w in p.words]
            for p, share in zip(sentences, shares, strict=True)
        ],
    )


def _match(plan: _Plan, per_sentence: Sequence[Sequence[tuple[str, float]]]) -> list[float]:
    """Weights of each sentence's words, in order, onto the words of ``plan`` (0 if absent).

    Within a sentence the weighed words are its words in order, less any the encoder cut
    off by truncation.
    """
    scores: list[float] = []
    for sentence, spans, weighed in zip(plan.sentences, plan.spans, per_sentence, strict=True):
        units = [sentence[a:b] for a, b in spans]
        sentence_scores = [0.0] * len(units)
        j = 0
        for word, weight in weighed:
            while j < len(units) and units[j] != word:
                j += 1
            if j == len(units):
                msg = (
                    f"logged word {word!r} is not a word of its sentence in order: "
                    "the classifier's word units differ from models.words.word_spans()"
                )
                raise ValueError(msg)
            sentence_scores[j] = weight
            j += 1
        scores.extend(sentence_scores)
    return scores


def _uniform_scores(plan: _Plan) -> list[float]:
    total = sum(plan.weights)
    return [
        w / total / len(spans)
        for w, spans in zip(plan.weights, plan.spans, strict=True)
        for _ in spans
    ]


def _versus(results: Mapping[str, FaithfulnessResult], method: str, baseline: str) -> str:
    label = f"comprehensiveness@20%: {method} ÷ {baseline}"
    ours, theirs = results.get(method), results.get(baseline)
    if ours is None or theirs is None or 0.2 not in ours.comprehensiveness:
        return f"{label}: n/a"
    a, b = ours.comprehensiveness[0.2], theirs.comprehensiveness[0.2]
    if b <= 0:
        return f"{label}: n/a ({baseline} is {b:.3f}; {method} is {a:.3f})"
    return f"{label} = {a / b:.2f}x ({a:.3f} / {b:.3f})"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0
