"""The attention-entropy penalty that makes the pooling weights peakier, and its schedule.

Attention over contextualised token states can spread its weight thinly and
still classify well, but then the few words an analyst sees highlighted carry
little of the decision.  Adding ``weight * H(alpha)`` (the mean entropy of the
pooling rows) to the loss concentrates each head on few tokens, so removing the
highlighted words changes the prediction (ERASER comprehensiveness rises).
Ramping the weight up from zero lets the heads first learn *which* tokens
matter, unconstrained, before they are asked to commit to them.
"""

from __future__ import annotations

import torch


def attention_entropy(alpha: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of attention rows [B, heads, T]; masked positions are exactly 0."""
    return -(alpha * torch.log(alpha.clamp_min(1e-12))).sum(dim=-1).mean()


def entropy_weight(step: int, total_steps: int, weight: float, warmup: float) -> float:
    """The penalty's weight at optimiser ``step``: linear from 0 over the first ``warmup`` share.

    ``warmup=0`` applies the full weight from the first step.
    """
    if warmup <= 0 or total_steps <= 0:
        return weight
    ramp = warmup * total_steps
    return weight * min(1.0, step / ramp)
