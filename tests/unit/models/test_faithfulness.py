"""ERASER faithfulness: exact numbers on a toy model, then the real attributions on a tiny model."""

import math

import pytest
import torch

from models.classifier import AttentionTextClassifier
from models.data import seed
from models.explain.faithfulness import (
    ERASER_BINS,
    FaithfulnessResult,
    delete_words,
    explain_eval,
    faithfulness,
    random_rankings,
    ranking_from_scores,
    render_markdown,
    split_words,
    top_count,
    word_attributions,
)
from models.saving import load_model
from models.words import word_spans

# Ten words; "good" is word 3.
TEN = "the agent was good and fixed my card very fast"
# Ten words without "good": the toy model predicts class 0 with p = 0.9.
PLAIN = "the agent was slow and broke my card very badly"


def toy_probs(texts):
    """Two classes: p(class 1) = 0.9 when the word "good" is present, else 0.1."""
    p1 = torch.tensor([0.9 if "good" in t.split() else 0.1 for t in texts])
    return torch.stack([1 - p1, p1], dim=1)


def ranking_with(word, position, n):
    """A ranking of n words with ``word`` at ``position`` and the others in text order."""
    rest = [i for i in range(n) if i != word]
    return rest[:position] + [word] + rest[position:]


def test_top_count_is_ceil_with_at_least_one_word():
    assert [top_count(k, 10) for k in ERASER_BINS] == [1, 1, 1, 2, 5]
    assert [top_count(k, 7) for k in (0.1, 0.2, 0.5)] == [1, 2, 4]
    assert top_count(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in floating point
    assert top_count(0.5, 0) == 0


def test_the_decisive_word_ranked_first_is_comprehensive_and_sufficient():
    result = faithfulness(toy_probs, [TEN], {"m": [ranking_with(3, 0, 10)]})["m"]
    assert result.n == 1
    assert result.comprehensiveness == pytest.approx({0.1: 0.8, 0.2: 0.8, 0.5: 0.8})
    assert result.sufficiency == pytest.approx({0.1: 0.0, 0.2: 0.0, 0.5: 0.0})
    assert result.aopc_comprehensiveness == pytest.approx(0.8)
    assert result.aopc_sufficiency == pytest.approx(0.0)


def test_the_decisive_word_ranked_last_is_neither():
    result = faithfulness(toy_probs, [TEN], {"m": [ranking_with(3, 9, 10)]})["m"]
    # Every bin takes at most 5 of the 10 words, so "good" is never among them.
    assert result.comprehensiveness == pytest.approx({0.1: 0.0, 0.2: 0.0, 0.5: 0.0})
    assert result.sufficiency == pytest.approx({0.1: 0.8, 0.2: 0.8, 0.5: 0.8})
    assert result.aopc_comprehensiveness == pytest.approx(0.0)
    assert result.aopc_sufficiency == pytest.approx(0.8)


def test_ceil_rule_and_aopc_average_over_the_bins():
    # "good" third: the bins take 1, 1, 1, 2 and 5 words, so only the 50 % bin holds it.
    result = faithfulness(toy_probs, [TEN], {"m": [ranking_with(3, 2, 10)]})["m"]
    assert result.comprehensiveness == pytest.approx({0.1: 0.0, 0.2: 0.0, 0.5: 0.8})
    assert result.sufficiency == pytest.approx({0.1: 0.8, 0.2: 0.8, 0.5: 0.0})
    assert result.aopc_comprehensiveness == pytest.approx(0.8 / 5)
    assert result.aopc_sufficiency == pytest.approx(4 * 0.8 / 5)

    # Seven words: 10 % -> ceil(0.7) = 1 word, 20 % -> ceil(1.4) = 2, 50 % -> ceil(3.5) = 4.
    seven = "good service from a very kind agent"
    second = faithfulness(toy_probs, [seven], {"m": [ranking_with(0, 1, 7)]})["m"]
    assert second.comprehensiveness == pytest.approx({0.1: 0.0, 0.2: 0.8, 0.5: 0.8})
    fourth = faithfulness(toy_probs, [seven], {"m": [ranking_with(0, 3, 7)]})["m"]
    assert fourth.comprehensiveness == pytest.approx({0.1: 0.0, 0.2: 0.0, 0.5: 0.8})
    fifth = faithfulness(toy_probs, [seven], {"m": [ranking_with(0, 4, 7)]})["m"]
    assert fifth.comprehensiveness == pytest.approx({0.1: 0.0, 0.2: 0.0, 0.5: 0.0})


def test_scores_average_over_texts_and_use_the_predicted_class():
    rankings = {"first": [ranking_with(3, 0, 10), list(range(10))]}
    result = faithfulness(toy_probs, [TEN, PLAIN], rankings, ks=(0.1,), aopc_bins=(0.1,))["first"]
    # PLAIN predicts class 0 (p = 0.9) and no removal changes that: 0 for both measures.
    assert result.n == 2
    assert result.comprehensiveness == pytest.approx({0.1: 0.4})
    assert result.sufficiency == pytest.approx({0.1: 0.0})


def test_perturbed_texts_are_rebuilt_batched_and_scored_once():
    calls = []

    def recording(texts):
        calls.append(list(texts))
        return toy_probs(texts)

    texts = ["  good\tday  ", *[f"word{i} good" for i in range(70)]]
    rankings = {"a": [[0, 1]] * 71, "b": [[0, 1]] * 71}
    result = faithfulness(recording, texts, rankings, ks=(0.5, 1.0), aopc_bins=(1.0,))
    seen = [t for call in calls for t in call]
    assert all(len(call) <= 64 for call in calls)
    assert len(seen) == len(set(seen))  # identical rankings do not double the work
    # Words are deleted from the text: the whitespace a deletion leaves at an edge goes,
    # the rest stays as written.
    assert "day  " in seen and "  good" in seen and "" in seen
    assert result["a"].comprehensiveness[1.0] == pytest.approx(0.8)  # nothing left: ""
    assert result["a"] == result["b"]


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        (set(), "  My card, sadly, was\nDECLINED!  "),
        ({1}, "  My, sadly, was\nDECLINED!  "),  # attached punctuation stays attached
        ({2}, "  My card sadly, was\nDECLINED!  "),
        ({0}, "card, sadly, was\nDECLINED!  "),  # whitespace left at an edge goes
        ({6, 7}, "  My card, sadly, was"),
        ({4}, "  My card, sadly was\nDECLINED!  "),
        ({3, 4}, "  My card, was\nDECLINED!  "),
        ({4, 5}, "  My card, sadly DECLINED!  "),  # the first whitespace run left
        ({5, 6}, "  My card, sadly,!  "),
        ({0, 1, 2, 3, 4, 5, 6, 7}, ""),
    ],
)
def test_deleting_words_keeps_the_rest_as_written(drop, expected):
    text = "  My card, sadly, was\nDECLINED!  "
    assert split_words(text) == ["My", "card", ",", "sadly", ",", "was", "DECLINED", "!"]
    assert delete_words(text, word_spans(text), drop) == expected
    assert delete_words("a\nb c", word_spans("a\nb c"), {1}) == "a\nc"


def test_bad_rankings_and_fractions_fail_fast():
    with pytest.raises(ValueError, match="permutation"):
        faithfulness(toy_probs, [TEN], {"m": [[0, 1, 2]]})
    with pytest.raises(ValueError, match="rankings for"):
        faithfulness(toy_probs, [TEN, PLAIN], {"m": [list(range(10))]})
    with pytest.raises(ValueError, match="fractions"):
        faithfulness(toy_probs, [TEN], {"m": [list(range(10))]}, ks=(0.0,))


def test_rankings_from_scores_and_random_rankings():
    assert ranking_from_scores([0.1, 0.5, 0.1, 0.3]) == [1, 3, 0, 2]
    first = random_rankings([5, 0, 3], seed=7)
    assert first == random_rankings([5, 0, 3], seed=7)
    assert [sorted(r) for r in first] == [[0, 1, 2, 3, 4], [], [0, 1, 2]]


def test_render_markdown_table_and_ratio():
    results = {
        "attention": FaithfulnessResult({0.1: 0.3, 0.2: 0.4, 0.5: 0.6}, {0.1: 0.2}, 0.5, 0.1, 4),
        "random": FaithfulnessResult({0.1: 0.1, 0.2: 0.2, 0.5: 0.3}, {0.1: 0.5}, 0.2, 0.4, 4),
    }
    text = render_markdown(results, "intent")
    assert "| method | comp@10 | comp@20 | comp@50 | AOPC comp | suff@10 |" in text
    assert "| attention | 0.300 | 0.400 | 0.600 | 0.500 |" in text
    assert "attention ÷ random = 2.00x" in text


# --- the real model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_texts():
    return [c.text for c in seed.load_chat()[:10]]


@pytest.mark.slow
def test_word_attributions_give_one_score_per_word(tiny_model, chat_texts):
    loaded = load_model(tiny_model)
    long_text = " ".join(["card"] * 80)  # past max_length: the tail is truncated
    texts = [*chat_texts, long_text]
    scores = word_attributions(
        loaded.model, loaded.tokenizer, texts, "intent", loaded.info.max_length, batch_size=4
    )
    assert set(scores) == {"attention", "attention_value_norm", "grad_x_input"}
    for per_text in scores.values():
        assert [len(s) for s in per_text] == [len(split_words(t)) for t in texts]
        assert all(math.isfinite(v) for s in per_text for v in s)
    for s in scores["attention"]:
        assert sum(s) == pytest.approx(1.0, abs=1e-5)
    assert all(v >= 0 for s in scores["grad_x_input"] for v in s)
    assert all(v >= 0 for s in scores["attention_value_norm"] for v in s)
    assert all(v == 0 for s in scores.values() for v in s[-1][50:])  # cut-off words
    assert all(p.grad is None for p in loaded.model.parameters())
    assert not loaded.model.training

    # The attention ranking is exactly what the pipeline logs.
    logged = AttentionTextClassifier(tiny_model, device="cpu").predict(chat_texts, ["intent"])
    for prediction, s in zip(logged, scores["attention"]):
        assert [w.weight for w in prediction["intent"].words] == pytest.approx(s, abs=1e-6)


def test_explain_eval_scores_every_method(tiny_model, chat_texts):
    results = explain_eval(tiny_model, chat_texts * 2, "intent", limit=10, progress=False)
    assert list(results) == ["attention", "attention_value_norm", "grad_x_input", "random"]
    for result in results.values():
        assert result.n == 10
        values = [
            *result.comprehensiveness.values(),
            *result.sufficiency.values(),
            result.aopc_comprehensiveness,
            result.aopc_sufficiency,
        ]
        assert all(-1 <= v <= 1 for v in values)
        assert set(result.comprehensiveness) == {0.1, 0.2, 0.5}
    assert "comp@20" in render_markdown(results, "intent")
