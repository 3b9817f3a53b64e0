import json

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
