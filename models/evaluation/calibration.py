"""Confidence calibration: temperature scaling, ECE and the ``unknown`` threshold.

Everything here is fitted on a validation split, never on the test split, so
the test metrics in the model card stay honest. :class:`Calibration` is small
enough to be written as JSON next to the weights of a saved model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


#: The threshold was fitted on in-scope and out-of-scope validation rows.
RULE_OOS = "oos-validation"
#: No threshold was set: every message gets its best intent.
RULE_NONE = "none"
#: A model saved before the rule was recorded (``calibration.json`` without ``threshold_rule``).
RULE_UNRECORDED = "unrecorded"
_COVERAGE_PREFIX = "coverage-"


def coverage_rule(target_coverage: float) -> str:
    """The rule name of a coverage threshold, e.g. ``coverage-0.97``."""
    return f"{_COVERAGE_PREFIX}{target_coverage:g}"


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and, for tasks that can say ``unknown``, a threshold.

    ``unknown_threshold`` applies to temperature-scaled top-label confidence:
    a prediction whose confidence is below it becomes ``unknown``.
    ``threshold_rule`` says how it was chosen (:data:`RULE_OOS`,
    :func:`coverage_rule`, :data:`RULE_NONE` or, for old files,
    :data:`RULE_UNRECORDED`) and ``n_in_scope``/``n_oos`` how many validation
    rows it was chosen on; :meth:`describe` puts that in words.
    """

    temperature: float
    unknown_threshold: float | None
    ece_before: float
    ece_after: float
    threshold_rule: str = RULE_UNRECORDED
    n_in_scope: int = 0
    n_oos: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            msg = f"temperature must be a positive finite number, got {self.temperature}"
            raise ValueError(msg)
        rule = self.threshold_rule
        if rule.startswith(_COVERAGE_PREFIX):
            _coverage(rule)  # raises on a malformed share
        elif rule not in {RULE_OOS, RULE_NONE, RULE_UNRECORDED}:
            msg = (
                f"threshold_rule must be {RULE_OOS!r}, 'coverage-<share>', {RULE_NONE!r} or "
                f"{RULE_UNRECORDED!r}, got {rule!r}"
            )
            raise ValueError(msg)
        # A rule that contradicts the threshold would make the model card say something false.
        if (rule == RULE_NONE) != (self.unknown_threshold is None) and rule != RULE_UNRECORDED:
            msg = f"threshold_rule {rule!r} does not fit unknown_threshold={self.unknown_threshold}"
            raise ValueError(msg)
        if rule == RULE_OOS and self.n_oos < 1:
            msg = f"threshold_rule {RULE_OOS!r} needs out-of-scope rows, got n_oos={self.n_oos}"
            raise ValueError(msg)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities, ``softmax(logits / temperature)``."""
        return torch.softmax(logits.float() / self.temperature, dim=-1)

    def describe(self) -> str:
        """How the ``unknown`` threshold was chosen, in one plain sentence."""
        rule = self.threshold_rule
        if rule == RULE_OOS:
            return (
                f"fitted on {self.n_in_scope} in-scope and {self.n_oos} out-of-scope validation "
                "rows, maximising (in-scope accuracy + out-of-scope recall) / 2"
            )
        if rule.startswith(_COVERAGE_PREFIX):
            kept = _coverage(rule)
            return (
                f"no out-of-scope examples in validation, so a coverage rule: the "
                f"{1 - kept:.0%} least confident of {self.n_in_scope} in-scope validation rows "
                f"fall below it ({kept:.0%} coverage); real out-of-scope recall is unmeasured"
            )
        if rule == RULE_NONE:
            return "no threshold: every message gets its most likely intent"
        return "not recorded (saved before attnwatch recorded the threshold rule)"

    def to_dict(self) -> dict[str, float | int | str | None]:
        """A JSON-ready mapping; :meth:`from_dict` reads it back."""
        return {
            "temperature": self.temperature,
            "unknown_threshold": self.unknown_threshold,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "threshold_rule": self.threshold_rule,
            "n_in_scope": self.n_in_scope,
            "n_oos": self.n_oos,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Calibration:
        """Rebuild from :meth:`to_dict`'s output; ``ValueError`` on missing or bad fields.

        Files written before the rule was recorded load with :data:`RULE_UNRECORDED`
        (or :data:`RULE_NONE` when they hold no threshold) and zero row counts.
        """
        threshold = data.get("unknown_threshold")
        rule = data.get("threshold_rule")
        if rule is None:
            rule = RULE_NONE if threshold is None else RULE_UNRECORDED
        if not isinstance(rule, str):
            msg = f"calibration field 'threshold_rule' must be a string, got {rule!r}"
            raise ValueError(msg)
        return cls(
            temperature=_number(data, "temperature"),
            unknown_threshold=None if threshold is None else _number(data, "unknown_threshold"),
            ece_before=_number(data, "ece_before"),
            ece_after=_number(data, "ece_after"),
            threshold_rule=rule,
            n_in_scope=_count(data, "n_in_scope"),
            n_oos=_count(data, "n_oos"),
        )


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (Guo et al. 2017).

    ``logits`` is ``(n, classes)`` from a validation split and ``labels`` the
    ``n`` gold class indices. ``log T`` is optimised with L-BFGS, so ``T`` stays
    positive; the result is clamped to ``[0.05, 20]``.
    """
    _check_logits(logits, labels)
    # Works even when the caller holds inference-mode tensors or has grad disabled.
    with torch.inference_mode(False), torch.enable_grad():
        x = logits.detach().to(torch.float64).clone()
        y = labels.detach().long().clone()
        log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x / log_t.exp(), y)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        optimizer.step(closure)  # type: ignore[no-untyped-call]
        temperature = float(log_t.detach().exp().item())
    if not math.isfinite(temperature):
        return MAX_TEMPERATURE
    return min(max(temperature, MIN_TEMPERATURE), MAX_TEMPERATURE)


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> float:
    """Top-label ECE over ``n_bins`` equal-width confidence bins.

    A confidence ``c`` falls in bin ``(i/n_bins, (i+1)/n_bins]``; the ECE is the
    support-weighted mean of ``|accuracy - mean confidence|`` over the bins.
    """
    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
        msg = f"expected probs (n, classes) and labels (n,), got {tuple(probs.shape)} and "
        msg += f"{tuple(labels.shape)}"
        raise ValueError(msg)
    if probs.shape[0] == 0:
        msg = "cannot compute the ECE of zero examples"
        raise ValueError(msg)
    if n_bins < 1:
        msg = f"n_bins must be at least 1, got {n_bins}"
        raise ValueError(msg)
    confidence, predicted = probs.detach().to(torch.float64).max(dim=-1)
    correct = (predicted == labels.to(predicted.device)).to(torch.float64)
    # Bin i is (b_i, b_i+1]: the number of inner boundaries strictly below c.
    inner = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)[1:-1]
    bins = torch.searchsorted(inner.to(confidence.device), confidence, right=False)
    conf_sum = torch.bincount(bins, weights=confidence, minlength=n_bins)
    correct_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    return float((conf_sum - correct_sum).abs().sum().item() / probs.shape[0])


def choose_unknown_threshold(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    is_oos: torch.Tensor | None = None,
    target_coverage: float = 0.97,
) -> float:
    """The confidence below which a prediction becomes ``unknown``, tuned on validation.

    With out-of-scope examples (``is_oos`` true for some), the threshold is the
    unique confidence maximising the mean of in-scope accuracy (an in-scope
    example below the threshold counts as wrong) and OOS recall (an OOS example
    below it counts as caught), as in CLINC150; ties go to the lowest threshold.
    Without them, it is the ``1 - target_coverage`` quantile of the in-scope
    confidences, so about ``target_coverage`` of them stay at or above it.
    ``correct`` is only read for in-scope examples.
    """
    if not 0.0 < target_coverage <= 1.0:
        msg = f"target_coverage must be in (0, 1], got {target_coverage}"
        raise ValueError(msg)
    if confidence.ndim != 1 or correct.shape != confidence.shape:
        msg = f"confidence and correct must be 1-D of one length, got {tuple(confidence.shape)} "
        msg += f"and {tuple(correct.shape)}"
        raise ValueError(msg)
    if is_oos is not None and is_oos.shape != confidence.shape:
        msg = f"is_oos has shape {tuple(is_oos.shape)}, expected {tuple(confidence.shape)}"
        raise ValueError(msg)
    if confidence.numel() == 0:
        msg = "cannot choose a threshold from zero examples"
        raise ValueError(msg)
    conf = confidence.detach().to(torch.float64).cpu()
    oos = (
        torch.zeros_like(conf, dtype=torch.bool) if is_oos is None else is_oos.detach().bool().cpu()
    )
    in_scope = ~oos
    if not bool(in_scope.any()):
        msg = "need at least one in-scope example to choose a threshold"
        raise ValueError(msg)
    if not bool(oos.any()):
        return float(torch.quantile(conf, 1.0 - target_coverage).item())

    right = correct.detach().bool().cpu() & in_scope
    kept_right = torch.sort(conf[right]).values
    oos_conf = torch.sort(conf[oos]).values
    candidates = torch.unique(conf)  # sorted ascending
    # At threshold t: right in-scope kept = #(conf >= t); OOS caught = #(conf < t).
    in_scope_accuracy = (
        kept_right.numel() - torch.searchsorted(kept_right, candidates, right=False)
    ).to(torch.float64) / int(in_scope.sum())
    oos_recall = torch.searchsorted(oos_conf, candidates, right=False).to(torch.float64) / int(
        oos.sum()
    )
    score = (in_scope_accuracy + oos_recall) / 2
    best = int(torch.nonzero(score == score.max())[0].item())
    return float(candidates[best].item())


def calibrate(
    logits: torch.Tensor,
    labels: torch.Tensor,
    is_oos: torch.Tensor | None = None,
    target_coverage: float | None = 0.97,
) -> Calibration:
    """Fit temperature and ``unknown`` threshold on a validation split.

    OOS rows (``is_oos`` true; their ``labels`` are ignored, e.g. ``-1``) are
    left out of temperature fitting and ECE and used only for the threshold.
    With ``target_coverage=None`` and no OOS rows, no threshold is set. The result
    records which rule set the threshold and on how many in-scope and OOS rows.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        msg = f"expected logits (n, classes) and labels (n,), got {tuple(logits.shape)} and "
        msg += f"{tuple(labels.shape)}"
        raise ValueError(msg)
    oos = (
        torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
        if is_oos is None
        else is_oos.bool()
    )
    if oos.shape != labels.shape:
        msg = f"is_oos has shape {tuple(oos.shape)}, expected {tuple(labels.shape)}"
        raise ValueError(msg)
    in_scope = ~oos
    in_logits, in_labels = logits[in_scope], labels[in_scope]
    temperature = fit_temperature(in_logits, in_labels)
    ece_before = expected_calibration_error(torch.softmax(in_logits.double(), -1), in_labels)
    scaled = torch.softmax(logits.double() / temperature, dim=-1)
    ece_after = expected_calibration_error(scaled[in_scope], in_labels)

    threshold: float | None = None
    rule = RULE_NONE
    if bool(oos.any()) or target_coverage is not None:
        confidence, predicted = scaled.max(dim=-1)
        correct = (predicted == labels) & in_scope
        coverage = 1.0 if target_coverage is None else target_coverage
        threshold = choose_unknown_threshold(confidence, correct, oos, coverage)
        rule = RULE_OOS if bool(oos.any()) else coverage_rule(coverage)
    n_in_scope = int(in_scope.sum())
    return Calibration(
        temperature, threshold, ece_before, ece_after, rule, n_in_scope, len(oos) - n_in_scope
    )


def _check_logits(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        msg = f"expected logits (n, classes) and labels (n,), got {tuple(logits.shape)} and "
        msg += f"{tuple(labels.shape)}"
        raise ValueError(msg)
    if logits.shape[0] == 0:
        msg = "cannot fit a temperature on zero examples"
        raise ValueError(msg)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        msg = f"labels must be integer class indices, got {labels.dtype}"
        raise ValueError(msg)
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        msg = f"labels must lie in [0, {logits.shape[1]}), got {int(labels.min())}.."
        msg += f"{int(labels.max())}"
        raise ValueError(msg)


def _coverage(rule: str) -> float:
    try:
        kept = float(rule.removeprefix(_COVERAGE_PREFIX))
    except ValueError:
        kept = math.nan
    if not 0.0 < kept <= 1.0:
        msg = f"threshold_rule {rule!r}: the coverage must be a share in (0, 1]"
        raise ValueError(msg)
    return kept


def _count(data: Mapping[str, object], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"calibration field {key!r} must be a count, got {value!r}"
        raise ValueError(msg)
    return value


def _number(data: Mapping[str, object], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"calibration field {key!r} must be a number, got {value!r}"
        raise ValueError(msg)
    return float(value)
