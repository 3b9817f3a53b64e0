"""Article-level faithfulness of long news: exact numbers on a toy classifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.classifier import Prediction, TaskPrediction
from models.explain.article import (
    ARTICLE_METHODS,
    Article,
    article_faithfulness,
    load_articles,
    render_article_markdown,
    seed_articles,
)
from models.explain.faithfulness import RANDOM
from models.modeling import TaskSpec
from models.saving import ModelInfo
from models.words import merge_word_pieces, word_spans

LABELS = ("negative", "neutral", "positive")
DECISIVE = "soared"
# Six words each; "soared" is the headline's fourth word.
HEADLINE = "Shares of Contoso soared after results"
BODY = "The company reports every quarter in May."
WITH = (0.05, 0.05, 0.9)  # any sentence holding "soared"
WITHOUT = (0.1, 0.8, 0.1)  # any other sentence


class ToyClassifier:
    """Sentiment is positive iff "soared" is in the text; attention puts 0.9 on it.

    Records every text it classifies, so a test can see what the article path asked.
    """

    info = ModelInfo(
        name="toy",
        version="0",
        tokenizer_hash="h",
        max_length=64,
        tasks=(TaskSpec("sentiment", LABELS),),
        encoder_source="toy",
        created_at="2026-11-26T00:00:00+00:00",
    )

    def __init__(self, weights: str = "decisive") -> None:
        self.seen: list[str] = []
        self._weights = weights

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        self.seen.extend(texts)
        return [{"sentiment": self._one(text)} for text in texts]

    def _one(self, text: str) -> TaskPrediction:
        spans = word_spans(text)
        words = [text[a:b] for a, b in spans]
        probs = WITH if DECISIVE in words else WITHOUT
        if self._weights == "decisive" and DECISIVE in words:
            weights = [0.9 if w == DECISIVE else 0.1 / (len(words) - 1) for w in words]
        else:
            weights = [1.0 / len(words)] * len(words) if words else []
        top = tuple(sorted(zip(LABELS, probs, strict=True), key=lambda item: -item[1]))
        logged = tuple(merge_word_pieces(text, spans, weights)) if spans else ()
        return TaskPrediction(top[0][0], top[0][1], top, logged)


def test_the_decisive_word_across_the_article_flips_the_label_and_beats_random() -> None:
    toy = ToyClassifier()
    report = article_faithfulness(toy, [Article(HEADLINE, BODY)], ks=(0.05, 0.2, 0.5), seed=0)
    assert report.n == 1 and report.mean_sentences == 2 and report.mean_words == 14
    assert list(report.results) == list(ARTICLE_METHODS)
    # Full article: positive = (2 x 0.9 + 1 x 0.1) / 3; without "soared" 0.1 everywhere.
    full = (2 * 0.9 + 0.1) / 3
    attention = report.results["attention"]
    assert attention.comprehensiveness == pytest.approx({k: full - 0.1 for k in (0.05, 0.2, 0.5)})
    assert attention.aopc_comprehensiveness == pytest.approx(full - 0.1)
    # "soared" alone is the headline "soared" alone (the body has no word left): 0.9.
    assert attention.sufficiency[0.05] == pytest.approx(full - 0.9)
    random = report.results[RANDOM]
    assert random.aopc_comprehensiveness < attention.aopc_comprehensiveness
    # The article was re-classified sentence by sentence: the headline without the word,
    # the body untouched (it comes from the cache, so it is classified only once).
    assert "Shares of Contoso after results" in toy.seen
    assert toy.seen.count(BODY) == 1


def test_sentence_uniform_knows_the_sentence_but_not_the_word() -> None:
    # Eight headline words at 2/3 of the article: each outweighs every body word, so the
    # uniform ranking takes headline words first, in random order.
    headline = "Shares of Contoso soared after results this week"
    report = article_faithfulness(ToyClassifier(), [Article(headline, BODY)], seed=3)
    uniform = report.results["sentence_uniform"]
    attention = report.results["attention"]
    # At 50% (7 of 15 words) uniform takes 7 of the 8 headline words: "soared" unless it
    # is the one left; below that it finds "soared" only by chance.
    assert uniform.aopc_comprehensiveness < attention.aopc_comprehensiveness
    text = render_article_markdown(report)
    assert "attention ÷ sentence_uniform" in text and "1 articles" in text


def test_logged_words_follow_the_sentences_that_carry_the_label() -> None:
    # Uniform word weights: the aggregation weights favour the headline (weight 2), but
    # the two body sentences carry "positive": (2 x 0.1 + 0.9 + 0.9) / 4 = 0.5.
    article = Article("Contoso results", "Shares soared today. Profits soared too.")
    report = article_faithfulness(ToyClassifier(weights="uniform"), [article], ks=(0.2,))
    assert report.labels == ("positive",)
    # 2 of 10 words: the logged weights (label shares) remove "Shares soared" (then
    # (0.2 + 0.1 + 0.9) / 4 = 0.3); the aggregation weights would remove the headline
    # (the body alone is 0.9 positive).
    assert report.results["attention"].comprehensiveness[0.2] == pytest.approx(0.5 - 0.3)
    assert report.results["weight_share"].comprehensiveness[0.2] == pytest.approx(0.5 - 0.9)


def test_an_article_without_any_word_left_is_one_empty_text() -> None:
    toy = ToyClassifier()
    report = article_faithfulness(toy, [Article("Profits soared", "Costs fell.")], ks=(1.0,))
    full = (2 * 0.9 + 0.1) / 3
    assert report.results["attention"].comprehensiveness[1.0] == pytest.approx(full - 0.1)
    assert "" in toy.seen


def test_logged_words_must_be_the_split_words(tmp_path: Path) -> None:
    class Renamed(ToyClassifier):
        def _one(self, text: str) -> TaskPrediction:
            found = super()._one(text)
            return TaskPrediction(found.label, found.score, found.top, found.words[::-1])

    with pytest.raises(ValueError, match="not a word of its sentence in order"):
        article_faithfulness(Renamed(), [Article(HEADLINE, BODY)])


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task 'intent'"):
        article_faithfulness(ToyClassifier(), [Article(HEADLINE)], task="intent")


def test_articles_load_from_jsonl_and_the_seed() -> None:
    articles = seed_articles()
    assert len(articles) >= 100 and all(a.body for a in articles)


def test_load_articles_reads_headline_and_body(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    rows = [{"headline": "A rose", "body": "B fell."}, {"headline": "C", "tickers": []}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert load_articles(path) == [Article("A rose", "B fell."), Article("C", None)]
    path.write_text('{"body": "no headline"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="1: needs a non-empty 'headline'"):
        load_articles(path)
