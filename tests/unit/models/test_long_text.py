import pytest

from models.classifier import TaskPrediction
from models.long_text import HEADLINE_WEIGHT, article_sentences, combine, split_sentences
from models.words import WordWeight


def test_sentences_split_on_ends_but_not_on_abbreviations():
    body = (
        "Northwind Corp. said profit rose 12%. Shares jumped in early trade! "
        "Analysts at J. P. Hollis expect more. 3 brokers upgraded the stock."
    )
    assert split_sentences(body) == [
        "Northwind Corp. said profit rose 12%.",
        "Shares jumped in early trade!",
        "Analysts at J. P. Hollis expect more.",
        "3 brokers upgraded the stock.",
    ]
    sentences, weights = article_sentences("NWB beats estimates", body)
    assert sentences[0] == "NWB beats estimates" and len(sentences) == 5
    assert weights == [HEADLINE_WEIGHT, 1.0, 1.0, 1.0, 1.0]


def sentence(label_probs, text):
    top = tuple(sorted(label_probs.items(), key=lambda kv: -kv[1]))
    words = tuple(WordWeight(w, 1 / len(text.split())) for w in text.split())
    return {"sentiment": TaskPrediction(top[0][0], top[0][1], top, words)}


def test_weighted_mean_evidence_and_words_summing_to_one():
    texts = ["Quiet headline", "Results were in line", "Regulator fines the bank heavily"]
    predictions = [
        sentence({"negative": 0.2, "neutral": 0.7, "positive": 0.1}, texts[0]),
        sentence({"negative": 0.1, "neutral": 0.8, "positive": 0.1}, texts[1]),
        sentence({"negative": 0.9, "neutral": 0.05, "positive": 0.05}, texts[2]),
    ]
    labels = {"sentiment": ("negative", "neutral", "positive")}
    combined, evidence = combine(texts, predictions, [2.0, 1.0, 1.0], labels)
    result = combined["sentiment"]
    # neutral: (2*0.7 + 0.8 + 0.05) / 4 = 0.5625; negative: (0.4 + 0.1 + 0.9) / 4 = 0.35
    assert result.label == "neutral"
    assert result.score == pytest.approx(0.5625)
    assert dict(result.top)["negative"] == pytest.approx(0.35)
    assert evidence["sentiment"].sentence == "Quiet headline"  # 2 * 0.7 is the largest share
    assert evidence["sentiment"].share == pytest.approx(1.4 / 2.25)
    assert sum(w.weight for w in result.words) == pytest.approx(1.0)
    assert [w.word for w in result.words] == " ".join(texts).split()
    with pytest.raises(ValueError, match="sentence predictions"):
        combine(texts[:2], predictions, [1.0, 1.0, 1.0], labels)
