import math

import pytest
import torch

from models.attention import AttentionPooling


def hand_pool(states, mask, query, w_k, b_k, w_v, b_v):
    """softmax(q·K^T / sqrt(d_k)) · V for one sequence, written out with Python loops."""
    keys = [
        [sum(s[i] * w_k[j][i] for i in range(len(s))) + b_k[j] for j in range(len(b_k))]
        for s in states
    ]
    values = [
        [sum(s[i] * w_v[j][i] for i in range(len(s))) + b_v[j] for j in range(len(b_v))]
        for s in states
    ]
    d_k = len(query)
    scores = [sum(q * k for q, k in zip(query, key)) / math.sqrt(d_k) for key in keys]
    exps = [math.exp(sc) if m else 0.0 for sc, m in zip(scores, mask)]
    alpha = [e / sum(exps) for e in exps]
    pooled = [sum(a * v[j] for a, v in zip(alpha, values)) for j in range(len(b_v))]
    return pooled, alpha


def test_pooling_equals_hand_computation():
    torch.manual_seed(0)
    pool = AttentionPooling(hidden_size=4, num_heads=1)
    states = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    pooled, alpha = pool(states, mask)
    for row in range(2):
        want_pooled, want_alpha = hand_pool(
            states[row].tolist(),
            mask[row].tolist(),
            pool.query[0].tolist(),
            pool.key.weight.tolist(),
            pool.key.bias.tolist(),
            pool.value.weight.tolist(),
            pool.value.bias.tolist(),
        )
        assert alpha[row, 0].tolist() == pytest.approx(want_alpha, abs=1e-5)
        assert pooled[row].tolist() == pytest.approx(want_pooled, abs=1e-5)


def test_padding_gets_zero_weight_and_does_not_change_the_result():
    torch.manual_seed(1)
    pool = AttentionPooling(hidden_size=8, num_heads=2)
    states = torch.randn(1, 3, 8)
    padded = torch.cat([states, torch.randn(1, 4, 8) * 100], dim=1)
    pooled, alpha = pool(states, torch.ones(1, 3))
    pooled_padded, alpha_padded = pool(padded, torch.tensor([[1, 1, 1, 0, 0, 0, 0]]))
    assert torch.all(alpha_padded[..., 3:] == 0)
    assert torch.allclose(alpha_padded.sum(-1), torch.ones(1, 2))
    assert torch.allclose(alpha_padded[..., :3], alpha, atol=1e-6)
    assert torch.allclose(pooled_padded, pooled, atol=1e-5)


def test_multi_head_shapes():
    pool = AttentionPooling(hidden_size=12, num_heads=3)
    pooled, alpha = pool(torch.randn(4, 6, 12), torch.ones(4, 6))
    assert pooled.shape == (4, 12)
    assert alpha.shape == (4, 3, 6)


@pytest.mark.parametrize(("hidden", "heads"), [(10, 3), (8, 0)])
def test_bad_head_counts_fail_fast(hidden, heads):
    with pytest.raises(ValueError, match="num_heads"):
        AttentionPooling(hidden, heads)
