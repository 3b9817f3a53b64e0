"""Optimiser and learning-rate schedule: AdamW, layer-wise LR decay, warm-up then linear decay."""

from __future__ import annotations

import re

import torch
from torch import nn

from models.modeling import AttentionClassifier
from models.training.training_args import TrainingArgs

_LAYER = re.compile(r"\.layers?\.(\d+)\.")
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def _encoder_depth(model: AttentionClassifier) -> int:
    return int(getattr(model.encoder.config, "num_hidden_layers", 0) or 0)


def layer_scale(name: str, depth: int, decay: float) -> float:
    """LR multiplier of an encoder parameter: ``decay ** (depth - layer)``.

    Layers are numbered from 0 (bottom): the top layer ``depth - 1`` gets
    ``decay``, each layer below one more factor of ``decay``, the embeddings
    ``decay ** (depth + 1)``; parameters outside the layers (poolers) get 1.
    Lower layers hold more general features and move less (Howard & Ruder 2018).
    """
    if decay == 1.0:
        return 1.0
    match = _LAYER.search(name)
    if match:
        return float(decay ** (depth - int(match.group(1))))
    if "embeddings" in name:
        return float(decay ** (depth + 1))
    return 1.0


def build_optimizer(
    model: AttentionClassifier, args: TrainingArgs, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with per-parameter groups, and a warm-up + linear-decay schedule."""
    depth = _encoder_depth(model)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("encoder."):
            lr = args.learning_rate * layer_scale(name, depth, args.layer_decay)
        else:
            lr = args.head_learning_rate
        weight_decay = 0.0 if name.endswith(_NO_DECAY) else args.weight_decay
        groups.setdefault((lr, weight_decay), []).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    )
    warmup = max(1, int(total_steps * args.warmup_ratio))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
