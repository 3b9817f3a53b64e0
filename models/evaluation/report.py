"""A classification report: per-class scores, confusion matrix, ECE and OOS detection.

The report is plain data (:meth:`ClassificationReport.to_dict` is JSON-ready);
the writers turn it into a CSV, a PNG heat map or Markdown for a model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import (  # type: ignore[import-untyped]
    confusion_matrix,
    precision_recall_fscore_support,
)

from models.evaluation.calibration import expected_calibration_error

#: Above this many classes the PNG drops the per-cell counts (they would not fit).
_ANNOTATE_UP_TO = 30


@dataclass
class ClassificationReport:
    """Scores of one task on one set of examples.

    ``accuracy``, ``macro_f1`` and ``per_class`` cover in-scope gold only (an
    ``unknown`` prediction of an in-scope example is wrong); ``macro_f1``
    averages the classes with support, like :func:`models.evaluation.metrics.macro_f1`.
    ``confusion`` rows are gold and columns predicted, both over ``labels``.
    ``oos_*`` are ``None`` without out-of-scope gold, ``ece`` without
    probabilities. ``n`` counts all examples, out-of-scope ones included.
    """

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    confusion: list[list[int]]
    ece: float | None
    oos_recall: float | None
    oos_precision: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def classification_report(
    gold: Sequence[str],
    pred: Sequence[str],
    probs: torch.Tensor | None = None,
    label_order: Sequence[str] | None = None,
    oos_label: str = "oos",
    unknown_label: str = "unknown",
) -> ClassificationReport:
    """Score ``pred`` against ``gold``.

    ``probs`` (``(n, len(label_order))``, the model's class probabilities) gives
    the ECE; it needs ``label_order``, and rows whose gold is not in it (such as
    out-of-scope ones) are skipped. With ``oos_label`` in ``gold``, OOS recall
    is the share of OOS gold predicted ``unknown_label`` and OOS precision the
    share of ``unknown_label`` predictions that are OOS.
    """
    if len(gold) != len(pred):
        msg = f"{len(gold)} gold labels but {len(pred)} predictions"
        raise ValueError(msg)
    if not gold:
        msg = "cannot report on zero examples"
        raise ValueError(msg)
    labels = _labels(gold, pred, label_order, oos_label, unknown_label)
    confusion = confusion_matrix(gold, pred, labels=labels).tolist()

    in_scope = [(g, p) for g, p in zip(gold, pred, strict=True) if g != oos_label]
    per_class = _per_class(in_scope, [x for x in labels if x not in (oos_label, unknown_label)])
    supported = [scores["f1"] for scores in per_class.values() if scores["support"] > 0]
    accuracy = sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else 0.0

    oos_recall: float | None = None
    oos_precision: float | None = None
    n_oos = len(gold) - len(in_scope)
    if n_oos:
        caught = sum(g == oos_label and p == unknown_label for g, p in zip(gold, pred, strict=True))
        flagged = sum(p == unknown_label for p in pred)
        oos_recall = caught / n_oos
        oos_precision = caught / flagged if flagged else 0.0

    return ClassificationReport(
        accuracy=accuracy,
        macro_f1=sum(supported) / len(supported) if supported else 0.0,
        per_class=per_class,
        labels=labels,
        confusion=confusion,
        ece=_ece(gold, probs, label_order),
        oos_recall=oos_recall,
        oos_precision=oos_precision,
        n=len(gold),
    )


def write_confusion_csv(report: ClassificationReport, path: Path) -> None:
    """Write the confusion matrix; read it back with ``pd.read_csv(path, index_col=0)``."""
    frame = pd.DataFrame(
        report.confusion,
        index=pd.Index(report.labels, name="gold"),
        columns=pd.Index(report.labels, name="predicted"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)


def write_confusion_png(report: ClassificationReport, path: Path, title: str = "") -> None:
    """Draw the confusion matrix as a heat map, coloured by each gold row's share.

    The figure grows with the class count so that 80 classes stay legible;
    cells carry counts up to 30 classes.
    """
    k = len(report.labels)
    counts = torch.tensor(report.confusion, dtype=torch.float64).reshape(k, k)
    shares = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    side = max(4.0, 2.5 + 0.24 * k)
    font = 9.0 if k <= 20 else max(6.0, 9.0 - (k - 20) / 20)
    dpi = 100 if k <= 40 else 130  # small tick labels need the extra pixels

    fig = Figure(figsize=(side + 1.2, side))
    FigureCanvasAgg(fig)  # attaches itself to fig: render without pyplot's global state
    ax = fig.add_subplot()
    image = ax.imshow(shares.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(k), report.labels, rotation=90, fontsize=font)
    ax.set_yticks(range(k), report.labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    if title:
        ax.set_title(title)
    if k <= _ANNOTATE_UP_TO:
        for row in range(k):
            for col in range(k):
                value = report.confusion[row][col]
                if value:
                    dark = float(shares[row, col]) > 0.5
                    ax.text(
                        col,
                        row,
                        str(value),
                        ha="center",
                        va="center",
                        fontsize=font - 1,
                        color="white" if dark else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)


def render_markdown(report: ClassificationReport, title: str) -> str:
    """A summary table and a per-class precision/recall/F1/support table."""
    rows = [("Examples", str(report.n))]
    if report.oos_recall is not None:
        n_in_scope = sum(int(s["support"]) for s in report.per_class.values())
        rows.append(("In-scope examples", str(n_in_scope)))
    rows += [("Accuracy", f"{report.accuracy:.3f}"), ("Macro F1", f"{report.macro_f1:.3f}")]
    if report.ece is not None:
        rows.append(("ECE", f"{report.ece:.3f}"))
    if report.oos_recall is not None and report.oos_precision is not None:
        rows.append(("OOS recall", f"{report.oos_recall:.3f}"))
        rows.append(("OOS precision", f"{report.oos_precision:.3f}"))

    lines = [f"## {title}", "", "| Metric | Value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| Class | Precision | Recall | F1 | Support |", "|---|---:|---:|---:|---:|"]
    for label, s in report.per_class.items():
        lines.append(
            f"| {_cell(label)} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} "
            f"| {int(s['support'])} |"
        )
    return "\n".join(lines) + "\n"


def _labels(
    gold: Sequence[str],
    pred: Sequence[str],
    label_order: Sequence[str] | None,
    oos_label: str,
    unknown_label: str,
) -> list[str]:
    """The model's classes in order, then unseen classes, then ``oos``, then ``unknown``."""
    special = {oos_label, unknown_label}
    labels = [x for x in dict.fromkeys(label_order or ()) if x not in special]
    seen = set(labels)
    labels += sorted({x for x in (*gold, *pred) if x not in seen and x not in special})
    if oos_label in gold or oos_label in pred:
        labels.append(oos_label)
    if unknown_label in pred or unknown_label in gold:
        labels.append(unknown_label)
    return labels


def _per_class(
    pairs: Sequence[tuple[str, str]], classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class, 0 where undefined."""
    if not pairs or not classes:  # sklearn refuses empty input
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}
        return {label: dict(zero) for label in classes}
    gold, pred = zip(*pairs, strict=True)
    scores = precision_recall_fscore_support(
        gold, pred, labels=list(classes), average=None, zero_division=0
    )
    return {
        label: {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": float(support),
        }
        for label, precision, recall, f1, support in zip(classes, *scores, strict=True)
    }


def _ece(
    gold: Sequence[str], probs: torch.Tensor | None, label_order: Sequence[str] | None
) -> float | None:
    if probs is None:
        return None
    if label_order is None:
        msg = "probs need label_order to find each gold label's column"
        raise ValueError(msg)
    if probs.ndim != 2 or probs.shape != (len(gold), len(label_order)):
        msg = f"probs must have shape ({len(gold)}, {len(label_order)}), got {tuple(probs.shape)}"
        raise ValueError(msg)
    column = {label: i for i, label in enumerate(label_order)}
    rows = [i for i, g in enumerate(gold) if g in column]
    if not rows:
        return None
    targets = torch.tensor([column[gold[i]] for i in rows], dtype=torch.long)
    return expected_calibration_error(probs.detach().cpu()[rows], targets)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
