"""The attention-entropy penalty that makes the pooling weights peakier.

Attention over contextualised token states can spread its weight thinly and
still classify well, but then the few words an analyst sees highlighted carry
little of the decision.  Adding ``weight * H(alpha)`` (the mean entropy of the
pooling rows) to the loss concentrates each head on few tokens, so removing the
highlighted words changes the prediction (ERASER comprehensiveness rises).

The penalty applies from the first step on purpose.  Ramped up from zero over
the first half of training instead, it made the weights just as peaky but on the
wrong tokens: on Banking77, comprehensiveness@20% fell from 3.38x random to 0.98x
(bench/RESULTS.md).  Early on the token states are still close to the words they
came from, so a head forced to choose then chooses the decisive word; later the
states are contextualised and a head sharpened late settles on any token that
summarises the sentence.
"""

from __future__ import annotations

import torch


def attention_entropy(alpha: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of attention rows [B, heads, T]; masked positions are exactly 0."""
    return -(alpha * torch.log(alpha.clamp_min(1e-12))).sum(dim=-1).mean()
