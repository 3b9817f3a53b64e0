import json
import random
from collections import Counter

import pandas as pd
import pytest
import torch

from models.evaluation.report import (
    classification_report,
    render_markdown,
    write_confusion_csv,
    write_confusion_png,
)

GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_per_class_scores_and_confusion_by_hand():
    report = classification_report(GOLD, PRED, label_order=["a", "b", "c"])
    assert report.labels == ["a", "b", "c"]
    assert report.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.accuracy == pytest.approx(4 / 6)
    # a: tp 2, fp 0, fn 1 | b: tp 1, fp 1, fn 1 | c: tp 1, fp 1, fn 0
    assert report.per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert report.per_class["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert report.per_class["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report.n == 6
    assert report.ece is None and report.oos_recall is None and report.oos_precision is None
    json.dumps(report.to_dict())


def test_oos_recall_precision_and_in_scope_scores():
    gold = ["a", "a", "b", "oos", "oos", "oos"]
    pred = ["a", "unknown", "b", "unknown", "unknown", "a"]
    report = classification_report(gold, pred, label_order=["a", "b"])
    assert report.labels == ["a", "b", "oos", "unknown"]
    assert report.confusion == [[1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 2], [0, 0, 0, 0]]
    assert report.oos_recall == pytest.approx(2 / 3)
    assert report.oos_precision == pytest.approx(2 / 3)  # one in-scope "a" was flagged too
    # In-scope only: the OOS example predicted "a" is not a false positive of "a".
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert set(report.per_class) == {"a", "b"}
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)
    assert report.n == 6


def _reference(gold, pred, labels, oos="oos", unknown="unknown"):
    """The hand-written counting the sklearn calls replaced, kept to compare against."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        confusion[index[g]][index[p]] += 1
    pairs = [(g, p) for g, p in zip(gold, pred) if g != oos]
    tp = Counter(g for g, p in pairs if g == p)
    support = Counter(g for g, _ in pairs)
    predicted = Counter(p for _, p in pairs)
    per_class = {}
    for label in (x for x in labels if x not in (oos, unknown)):
        denom = support[label] + predicted[label]
        per_class[label] = {
            "precision": tp[label] / predicted[label] if predicted[label] else 0.0,
            "recall": tp[label] / support[label] if support[label] else 0.0,
            "f1": 2 * tp[label] / denom if denom else 0.0,
            "support": float(support[label]),
        }
    return confusion, per_class


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_hand_written_counts_on_random_labels(seed):
    rng = random.Random(seed)
    known = ["a", "b", "c", "d", "e"]
    # "f" is gold but not in label_order, "g" only predicted, "c" never gold.
    gold = rng.choices(["a", "b", "d", "e", "f", "oos"], k=200)
    pred = rng.choices(known + ["f", "g", "unknown"], k=200)
    report = classification_report(gold, pred, label_order=known)
    assert report.labels == [*known, "f", "g", "oos", "unknown"]
    confusion, per_class = _reference(gold, pred, report.labels)
    assert report.confusion == confusion
    assert sum(map(sum, report.confusion)) == 200
    assert report.per_class.keys() == per_class.keys()
    for label, scores in per_class.items():
        assert report.per_class[label] == pytest.approx(scores, abs=1e-12), label
    assert report.per_class["c"]["support"] == 0 and report.per_class["g"]["recall"] == 0
    supported = [s["f1"] for s in per_class.values() if s["support"] > 0]
    assert report.macro_f1 == pytest.approx(sum(supported) / len(supported))


def test_all_out_of_scope_gives_zero_in_scope_scores():
    report = classification_report(["oos", "oos"], ["unknown", "a"], label_order=["a"])
    assert report.per_class == {"a": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}
    assert report.accuracy == 0.0 and report.macro_f1 == 0.0
    assert report.oos_recall == 0.5 and report.oos_precision == 1.0
    assert report.confusion == [[0, 0, 0], [1, 0, 1], [0, 0, 0]]


def test_ece_uses_label_order_and_skips_oos_rows():
    gold = ["a", "b", "oos"]
    pred = ["a", "a", "unknown"]
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    report = classification_report(gold, pred, probs, label_order=["a", "b"])
    # Two rows left: conf .9 right, conf .6 wrong; 15 bins put them apart.
    assert report.ece == pytest.approx((0.1 + 0.6) / 2)
    with pytest.raises(ValueError, match="label_order"):
        classification_report(gold, pred, probs)
    with pytest.raises(ValueError, match="shape"):
        classification_report(gold, pred, probs[:2], label_order=["a", "b"])


def test_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="predictions"):
        classification_report(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="zero examples"):
        classification_report([], [])


def test_confusion_csv_round_trips_through_pandas(tmp_path):
    report = classification_report(GOLD + ["oos"], PRED + ["unknown"])
    path = tmp_path / "confusion.csv"
    write_confusion_csv(report, path)
    frame = pd.read_csv(path, index_col=0)
    assert frame.index.name == "gold"
    assert list(frame.index) == report.labels == ["a", "b", "c", "oos", "unknown"]
    assert list(frame.columns) == report.labels
    assert frame.to_numpy().tolist() == report.confusion


def test_confusion_png_is_written(tmp_path):
    report = classification_report(GOLD + ["oos"], PRED + ["unknown"])
    path = tmp_path / "plots" / "confusion.png"
    write_confusion_png(report, path, title="intent")
    data = path.read_bytes()
    assert len(data) > 1000
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def test_markdown_has_summary_and_per_class_rows():
    gold = ["a", "a", "b|c", "oos"]
    pred = ["a", "b|c", "b|c", "unknown"]
    text = render_markdown(classification_report(gold, pred), "Intent (test)")
    assert text.startswith("## Intent (test)\n")
    assert "| Examples | 4 |" in text
    assert "| In-scope examples | 3 |" in text
    assert "| OOS recall | 1.000 |" in text
    assert "| a | 1.000 | 0.500 | 0.667 | 2 |" in text
    assert "| b\\|c | 0.500 | 1.000 | 0.667 | 1 |" in text
    assert "ECE" not in text
