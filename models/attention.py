"""Attention pooling: a learned query attends over the encoder's token states.

For each head ``h`` with learned query ``q_h`` (shape ``d_k``)::

    K = H W_k,  V = H W_v
    alpha_h = softmax(q_h K_h^T / sqrt(d_k))     # masked: padding and special tokens get 0
    c_h     = alpha_h V_h

Heads are concatenated and, with more than one head, projected back to the
hidden size.  ``alpha`` is returned so the weights that produced a decision
can be logged next to it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AttentionPooling(nn.Module):
    """Pool a sequence of token states into one vector with learned-query attention."""

    def __init__(self, hidden_size: int, num_heads: int = 1, d_k: int | None = None) -> None:
        super().__init__()
        if num_heads < 1:
            msg = f"num_heads must be >= 1, got {num_heads}"
            raise ValueError(msg)
        if hidden_size % num_heads:
            msg = f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}"
            raise ValueError(msg)
        self.num_heads = num_heads
        self.d_k = d_k or hidden_size // num_heads
        self.d_v = hidden_size // num_heads
        self.query = nn.Parameter(torch.randn(num_heads, self.d_k) / math.sqrt(self.d_k))
        self.key = nn.Linear(hidden_size, num_heads * self.d_k)
        self.value = nn.Linear(hidden_size, num_heads * self.d_v)
        self.out: nn.Module = (
            nn.Linear(num_heads * self.d_v, hidden_size) if num_heads > 1 else nn.Identity()
        )

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``states`` [B, T, H] where ``mask`` [B, T] is true.

        Returns the pooled vector [B, H] and the attention weights [B, heads, T]
        (exactly zero where the mask is false; each row sums to one).
        """
        batch, length, _ = states.shape
        keys = self.key(states).view(batch, length, self.num_heads, self.d_k).transpose(1, 2)
        values = self.value(states).view(batch, length, self.num_heads, self.d_v).transpose(1, 2)
        scores = torch.einsum("hd,bhtd->bht", self.query, keys) / math.sqrt(self.d_k)
        keep = mask.bool()[:, None, :]
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores, dim=-1) * keep
        # Renormalise so a fully masked row (never produced by the classifier) stays finite.
        alpha = alpha / alpha.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(alpha.dtype).tiny)
        pooled = torch.einsum("bht,bhtd->bhd", alpha, values).reshape(batch, -1)
        return self.out(pooled), alpha
