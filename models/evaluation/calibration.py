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


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and, for tasks that can say ``unknown``, a threshold.

    ``unknown_threshold`` applies to temperature-scaled top-label confidence:
    a prediction whose confidence is below it becomes ``unknown``.
    """

    temperature: float
    unknown_threshold: float | None
    ece_before: float
    ece_after: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            msg = f"temperature must be a positive finite number, got {self.temperature}"
            raise ValueError(msg)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities, ``softmax(logits / temperature)``."""
        return torch.softmax(logits.float() / self.temperature, dim=-1)

    def to_dict(self) -> dict[str, float | None]:
        """A JSON-ready mapping; :meth:`from_dict` reads it back."""
        return {
            "temperature": self.temperature,
            "unknown_threshold": self.unknown_threshold,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Calibration:
        """Rebuild from :meth:`to_dict`'s output; ``ValueError`` on missing or bad fields."""
        threshold = data.get("unknown_threshold")
        return cls(
            temperature=_number(data, "temperature"),
            unknown_threshold=None if threshold is None else _number(data, "unknown_threshold"),
            ece_before=_number(data, "ece_before"),
            ece_after=_number(data, "ece_after"),
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
    With ``target_coverage=None`` and no OOS rows, no threshold is set.
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
    if bool(oos.any()) or target_coverage is not None:
        confidence, predicted = scaled.max(dim=-1)
        correct = (predicted == labels) & in_scope
        threshold = choose_unknown_threshold(
            confidence, correct, oos, 1.0 if target_coverage is None else target_coverage
        )
    return Calibration(temperature, threshold, ece_before, ece_after)


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


def _number(data: Mapping[str, object], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"calibration field {key!r} must be a number, got {value!r}"
        raise ValueError(msg)
    return float(value)
