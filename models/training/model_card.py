"""The model card: what a saved model is, what it was trained on and how well it does."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import torch

from models.evaluation.calibration import Calibration
from models.evaluation.metrics import TaskMetrics
from models.training.training_args import TrainingArgs
from models.training.trust import TaskTrust, card_section


def hardware() -> str:
    """A one-line description of where training ran."""
    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.machine()} x{torch.get_num_threads()} threads"


def metrics_dict(metrics: dict[str, dict[str, TaskMetrics]]) -> dict[str, Any]:
    """Metrics as plain JSON-able dicts."""
    return {task: {g: asdict(m) for g, m in groups.items()} for task, groups in metrics.items()}


def render_card(
    *,
    name: str,
    version_note: str,
    args: TrainingArgs,
    encoder_source: str,
    data_hash: str,
    n_train: int,
    n_test: int,
    metrics: dict[str, dict[str, TaskMetrics]],
    train_seconds: float,
    created_at: str,
    labels: dict[str, tuple[str, ...]],
    n_validation: int = 0,
    history: Sequence[Mapping[str, float]] = (),
    best_epoch: int = -1,
    averaging: str | None = None,
    distillation: str | None = None,
    calibration: Calibration | None = None,
    kept_layers: Sequence[int] | None = None,
    trust: Mapping[str, TaskTrust] | None = None,
) -> str:
    """Render the card as Markdown."""
    lines = [
        f"# {name}",
        "",
        "Attention classifier trained by attnwatch: a transformer encoder with one "
        "learned-query attention-pooling head per task "
        "(`alpha = softmax(q·K^T/sqrt(d_k))`, `c = alpha·V`).",
        "",
        f"- created: {created_at}",
        f"- {version_note}",
        f"- encoder: `{encoder_source}`",
        f"- training data sha256: `{data_hash}`",
        f"- examples: {n_train} train / {n_validation} validation (early stopping, "
        f"calibration) / {n_test} held-out test",
        f"- training time: {train_seconds:.1f} s on {hardware()}, torch {torch.__version__}",
        f"- epochs {args.epochs}, batch {args.batch_size}, lr {args.learning_rate} "
        f"(heads {args.head_learning_rate}), warm-up {args.warmup_ratio}, "
        f"label smoothing {args.label_smoothing}, max length {args.max_length}, seed {args.seed} "
        f"(validation split seed {args.validation_seed}), "
        f"layer-wise LR decay {args.layer_decay}, pooling heads {args.num_heads}, "
        f"attention-entropy penalty {args.attention_entropy}",
        f"- best epoch (validation macro-F1): {best_epoch}",
        *([f"- checkpoint averaging: {averaging}"] if averaging else []),
        *([f"- knowledge distillation: {distillation}"] if distillation else []),
        *([_layers_line(kept_layers)] if kept_layers is not None else []),
        "",
        "## Held-out test metrics",
        "",
        "| task | group | n | accuracy | macro-F1 | majority baseline |",
        "|---|---|---|---|---|---|",
    ]
    for task, groups in metrics.items():
        for group, m in groups.items():
            lines.append(
                f"| {task} | {group} | {m.n} | {m.accuracy:.3f} | {m.macro_f1:.3f} "
                f"| {m.majority_baseline:.3f} |"
            )
    if history:
        lines += [
            "",
            "## Validation by epoch",
            "",
            "| epoch | loss | validation macro-F1 |",
            "|---|---|---|",
        ]
        lines += [
            f"| {int(h['epoch'])} | {h['loss']:.4f} | {h['val_macro_f1']:.4f} |" for h in history
        ]
    if calibration is not None:
        threshold = (
            "none"
            if calibration.unknown_threshold is None
            else f"{calibration.unknown_threshold:.3f}"
        )
        lines += [
            "",
            "## Intent calibration (validation split)",
            "",
            f"- temperature {calibration.temperature:.3f}; ECE {calibration.ece_before:.4f} "
            f"before, {calibration.ece_after:.4f} after",
            f"- unknown-intent threshold on calibrated confidence: {threshold}",
            f"- threshold rule `{calibration.threshold_rule}`: {calibration.describe()}",
        ]
    if trust is not None:
        lines += card_section(trust, args.faithfulness_sample)
    lines += ["", "## Labels", ""]
    for task, names in labels.items():
        lines.append(f"- {task}: {', '.join(names)}")
    lines += ["", *args.extra_card_notes]
    return "\n".join(lines).rstrip() + "\n"


def _layers_line(kept: Sequence[int]) -> str:
    layers = ", ".join(str(i) for i in kept)
    return (
        f"- smaller encoder: {len(kept)} transformer layers (encoder_layers), the pretrained "
        f"encoder's layers {layers} (see models.fast.layers)"
    )
