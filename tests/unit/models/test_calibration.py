import json

import pytest
import torch

from models.evaluation.calibration import (
    Calibration,
    calibrate,
    choose_unknown_threshold,
    expected_calibration_error,
    fit_temperature,
)


def _calibrated_logits(n: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose softmax is the true label distribution (so T = 1 is right for them)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen) * 1.5
    labels = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)
    return logits, labels


def test_temperature_recovers_overconfidence_factor_and_lowers_ece():
    logits, labels = _calibrated_logits(2000, 5, seed=0)
    overconfident = logits * 5
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(5.0, rel=0.1)
    before = expected_calibration_error(torch.softmax(overconfident, -1), labels)
    after = expected_calibration_error(torch.softmax(overconfident / temperature, -1), labels)
    assert after < before


def test_temperature_is_clamped_and_works_under_inference_mode():
    logits = torch.tensor([[2.0, -2.0], [-2.0, 2.0]])
    with torch.inference_mode():
        right = fit_temperature(logits, torch.tensor([0, 1]))
        wrong = fit_temperature(logits, torch.tensor([1, 0]))
    # Always right: NLL falls as T -> 0 until its gradient vanishes; never below the floor.
    assert 0.05 <= right < 0.5
    # Always wrong: NLL falls as T -> infinity, so T hits the ceiling.
    assert wrong == pytest.approx(20.0)


def test_fit_temperature_rejects_bad_input():
    with pytest.raises(ValueError, match="expected logits"):
        fit_temperature(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="zero examples"):
        fit_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="must lie in"):
        fit_temperature(torch.zeros(1, 2), torch.tensor([2]))


def test_ece_by_hand_with_known_bins():
    # 4 bins: (0, .25], (.25, .5], (.5, .75], (.75, 1]
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.25, 0.75]])
    labels = torch.tensor([0, 0, 0, 0])  # right, wrong, right, wrong
    # Top bin: confidences .9, .8 -> mean .85, accuracy .5 -> |gap| .35, weight 2/4.
    # Third bin: .6 and .75 (closed on the right) -> mean .675, accuracy .5 -> .175, weight 2/4.
    expected = 0.5 * 0.35 + 0.5 * 0.175
    assert expected_calibration_error(probs, labels, n_bins=4) == pytest.approx(expected)
    # One bin: |mean confidence - accuracy| = |.7625 - .5|.
    assert expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.2625)


def test_threshold_separates_low_confidence_oos_from_in_scope():
    confidence = torch.tensor([0.2, 0.3, 0.35, 0.6, 0.7, 0.8, 0.9, 0.95])
    is_oos = torch.tensor([True, True, True, False, False, False, False, False])
    correct = torch.tensor([False, False, False, True, True, False, True, True])
    threshold = choose_unknown_threshold(confidence, correct, is_oos)
    assert threshold == pytest.approx(0.6)
    rejected = confidence < threshold
    assert bool(rejected[is_oos].all())  # OOS recall 1
    assert not bool(rejected[~is_oos].any())  # every in-scope prediction kept


def test_threshold_trades_in_scope_accuracy_against_oos_recall():
    # An OOS example above two in-scope wrong ones: rejecting it costs nothing right.
    confidence = torch.tensor([0.1, 0.4, 0.5, 0.55, 0.9, 0.95])
    is_oos = torch.tensor([True, False, False, True, False, False])
    correct = torch.tensor([False, False, False, False, True, True])
    assert choose_unknown_threshold(confidence, correct, is_oos) == pytest.approx(0.9)


def test_threshold_without_oos_keeps_target_coverage():
    confidence = torch.arange(1, 101, dtype=torch.float64) / 100  # .01 .. 1.00
    correct = torch.ones(100, dtype=torch.bool)
    threshold = choose_unknown_threshold(confidence, correct, target_coverage=0.9)
    assert threshold == pytest.approx(torch.quantile(confidence, 0.1).item())
    assert int((confidence >= threshold).sum()) == 90
    # An all-false is_oos means the same as none.
    no_oos = torch.zeros(100, dtype=torch.bool)
    assert choose_unknown_threshold(confidence, correct, no_oos, 0.9) == threshold
    assert choose_unknown_threshold(confidence, correct, target_coverage=1.0) == 0.01


def test_threshold_validates_input():
    conf = torch.tensor([0.5, 0.6])
    ok = torch.tensor([True, True])
    with pytest.raises(ValueError, match="one length"):
        choose_unknown_threshold(conf, torch.tensor([True]))
    with pytest.raises(ValueError, match="is_oos"):
        choose_unknown_threshold(conf, ok, torch.tensor([True]))
    with pytest.raises(ValueError, match="zero examples"):
        choose_unknown_threshold(torch.zeros(0), torch.zeros(0, dtype=torch.bool))
    for coverage in (0.0, 1.5):
        with pytest.raises(ValueError, match="target_coverage"):
            choose_unknown_threshold(conf, ok, target_coverage=coverage)
    with pytest.raises(ValueError, match="in-scope"):
        choose_unknown_threshold(conf, ok, torch.tensor([True, True]))


def test_calibrate_ignores_oos_for_temperature_and_round_trips_as_json():
    logits, labels = _calibrated_logits(600, 4, seed=1)
    oos_logits = torch.zeros(40, 4)  # flat: low confidence whatever the temperature
    all_logits = torch.cat([logits * 3, oos_logits])
    all_labels = torch.cat([labels, torch.full((40,), -1)])
    is_oos = torch.cat([torch.zeros(600, dtype=torch.bool), torch.ones(40, dtype=torch.bool)])

    result = calibrate(all_logits, all_labels, is_oos)
    assert result.temperature == pytest.approx(3.0, rel=0.15)
    assert result.ece_after < result.ece_before
    assert result.unknown_threshold is not None
    assert result.unknown_threshold > 0.25  # above every OOS confidence (1/4)

    restored = Calibration.from_dict(json.loads(json.dumps(result.to_dict())))
    assert restored == result
    probs = restored.probabilities(all_logits)
    assert torch.allclose(probs.sum(-1), torch.ones(640))


def test_calibrate_without_threshold_and_from_dict_validation():
    logits, labels = _calibrated_logits(200, 3, seed=2)
    result = calibrate(logits, labels, target_coverage=None)
    assert result.unknown_threshold is None
    assert Calibration.from_dict(result.to_dict()) == result
    with pytest.raises(ValueError, match="temperature"):
        Calibration.from_dict({"unknown_threshold": None, "ece_before": 0.1, "ece_after": 0.1})
    with pytest.raises(ValueError, match="positive"):
        Calibration(0.0, None, 0.1, 0.1)
