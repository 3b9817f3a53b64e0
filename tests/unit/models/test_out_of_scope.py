"""Out-of-scope intents: which rows are OOS, the threshold rule they set, and old models."""

import json
import shutil

import pytest
import torch

from models.classifier import UNKNOWN, AttentionTextClassifier
from models.data.examples import Example
from models.data.out_of_scope import is_oos_label, split_out_of_scope, validation_scope
from models.evaluation.calibration import (
    RULE_NONE,
    RULE_OOS,
    RULE_UNRECORDED,
    Calibration,
    calibrate,
    coverage_rule,
)
from models.saving import read_calibration
from models.training.trainer import Trainer
from tests.support.model import tiny_args

OFF_TOPIC = (
    "what is the weather in paris",
    "play some jazz music",
    "book a table for two",
    "how tall is mount everest",
    "tell me a joke please",
    "set an alarm for seven",
)


def in_scope(n, start=0):
    out = []
    for i in range(start, start + n):
        out.append(Example(f"card {i} declined again", {"intent": "card"}))
        out.append(Example(f"refund {i} arrived thanks", {"intent": "refund"}))
    return out


def off_topic(n, label="oos", start=0):
    return [
        Example(f"{OFF_TOPIC[i % len(OFF_TOPIC)]} {i}", {"intent": label})
        for i in range(start, start + n)
    ]


def test_oos_labels_and_splitting_them_off():
    assert is_oos_label("oos") and is_oos_label(" Out_Of_Scope ") and is_oos_label("UNKNOWN")
    assert not is_oos_label("card")
    rows = [*in_scope(1), *off_topic(2, "out_of_scope"), Example("fine", {"sentiment": "neutral"})]
    kept, oos = split_out_of_scope(rows)
    assert [e.labels for e in kept] == [{"intent": "card"}, {"intent": "refund"}, rows[-1].labels]
    assert len(oos) == 2


def test_validation_scope_counts_and_refuses_unusable_sets():
    trained = {"intent": {"card", "refund"}}
    scope = validation_scope(
        in_scope(2) + off_topic(3) + off_topic(1, "exchange_rate"), trained, "v"
    )
    assert (scope.n_in_scope, scope.n_oos) == (4, 4)
    assert scope.oos_labels == {"oos": 3, "exchange_rate": 1}
    assert "4 in-scope, 4 out-of-scope" in scope.summary() and "exchange_rate 1" in scope.summary()
    with pytest.raises(ValueError, match="v has no rows"):
        validation_scope([], trained, "v")
    with pytest.raises(ValueError, match="no in-scope"):
        validation_scope(off_topic(3), trained, "v")
    with pytest.raises(ValueError, match="no in-scope"):
        validation_scope([Example("meh", {"sentiment": "neutral"})], trained, "v")


@pytest.mark.slow
def test_calibrate_records_the_rule_and_its_rows():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [3.0, 0.0], [0.2, 0.0], [0.0, 0.1]])
    labels = torch.tensor([0, 1, 0, -1, -1]).clamp(min=0)
    oos = torch.tensor([False, False, False, True, True])
    fitted = calibrate(logits, labels, oos)
    assert (fitted.threshold_rule, fitted.n_in_scope, fitted.n_oos) == (RULE_OOS, 3, 2)
    assert "3 in-scope and 2 out-of-scope" in fitted.describe()
    coverage = calibrate(logits[:3], labels[:3])
    assert coverage.threshold_rule == coverage_rule(0.97) == "coverage-0.97"
    assert "3% least confident of 3 in-scope" in coverage.describe()
    bare = calibrate(logits[:3], labels[:3], target_coverage=None)
    assert bare.threshold_rule == RULE_NONE and bare.unknown_threshold is None
    for cal in (fitted, coverage, bare):
        assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    with pytest.raises(ValueError, match="threshold_rule"):
        Calibration(1.0, 0.5, 0.1, 0.1, "coverage-2")
    with pytest.raises(ValueError, match="does not fit"):
        Calibration(1.0, None, 0.1, 0.1, RULE_OOS, 3, 2)


def test_old_calibration_without_a_rule_loads():
    old = {"temperature": 1.5, "unknown_threshold": 0.4, "ece_before": 0.1, "ece_after": 0.05}
    loaded = Calibration.from_dict(old)
    assert loaded.threshold_rule == RULE_UNRECORDED and "not recorded" in loaded.describe()
    assert Calibration.from_dict({**old, "unknown_threshold": None}).threshold_rule == RULE_NONE


@pytest.mark.slow
def test_threshold_fitted_on_oos_validation_rows_catches_them(tmp_path):
    validation = in_scope(6, start=100) + off_topic(12)
    args = tiny_args(tmp_path / "m", batch_size=8, max_length=32, faithfulness_sample=0)
    result = Trainer(args).train(in_scope(12), [], "h", validation=validation)
    calibration = result.calibration
    assert calibration is not None
    assert (calibration.threshold_rule, calibration.n_in_scope, calibration.n_oos) == (
        RULE_OOS,
        12,
        12,
    )
    card = (result.directory / "README.md").read_text()
    assert "threshold rule `oos-validation`: fitted on 12 in-scope and 12 out-of-scope" in card

    classifier = AttentionTextClassifier(result.directory, "cpu")
    oos = [p["intent"].label for p in classifier.predict([e.text for e in off_topic(12)])]
    kept = [p["intent"].label for p in classifier.predict([e.text for e in in_scope(6, 200)])]
    assert oos.count(UNKNOWN) >= 10, oos
    assert sum(label != UNKNOWN for label in kept) >= 10, kept

    # A model saved before the rule was recorded still loads and serves the same way.
    old = tmp_path / "old"
    shutil.copytree(result.directory, old)
    saved = json.loads((old / "calibration.json").read_text())
    for key in ("threshold_rule", "n_in_scope", "n_oos"):
        del saved[key]
    (old / "calibration.json").write_text(json.dumps(saved))
    assert Calibration.from_dict(read_calibration(old) or {}).threshold_rule == RULE_UNRECORDED
    again = AttentionTextClassifier(old, "cpu").predict([e.text for e in off_topic(12)])
    assert [p["intent"].label for p in again] == oos
