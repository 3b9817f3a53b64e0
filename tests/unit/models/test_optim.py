"""The learning-rate schedule: linear warm-up from 0, then linear decay towards 0."""

import math

import pytest
import torch
from transformers import AutoConfig

from models.modeling import AttentionClassifier, TaskSpec
from models.training.optim import build_optimizer
from tests.support.model import TINY_BERT, tiny_args


def expected_factor(step, total, warmup):
    """The documented formula, written out independently of the implementation."""
    if step < warmup:
        return step / warmup
    return (total - step) / (total - warmup)


def lr_per_step(tmp_path, total, **args):
    config = AutoConfig.for_model("bert", vocab_size=50, **TINY_BERT)
    model = AttentionClassifier.from_config(config, [TaskSpec("intent", ("a", "b"), 1)])
    optimizer, scheduler = build_optimizer(model, tiny_args(tmp_path, **args), total)
    lrs = []
    for _ in range(total):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(("total", "ratio"), [(100, 0.1), (37, 0.25), (9, 0.1)])
def test_schedule_follows_the_documented_formula(tmp_path, total, ratio):
    peak, head = 2e-3, 7e-3
    lrs = lr_per_step(
        tmp_path, total, warmup_ratio=ratio, learning_rate=peak, head_learning_rate=head
    )
    warmup = math.ceil(total * ratio)
    middle = (warmup + total) // 2
    for step in (0, warmup - 1, warmup, middle, total - 1):
        factor = expected_factor(step, total, warmup)
        assert max(lrs[step]) == pytest.approx(head * factor, rel=1e-9, abs=1e-15), step
    assert lrs[0] == [0.0] * len(lrs[0])  # warm-up starts from 0
    assert max(lrs[warmup]) == pytest.approx(head)  # the peak, once, at the end of warm-up
    assert max(lrs[-1]) == pytest.approx(head / (total - warmup))  # the last step is not 0
    # every group follows the same factor: the head's and the (top) encoder layers' ratio holds
    assert min(lrs[warmup]) < max(lrs[warmup])
    for step in (1, middle, total - 1):
        assert [lr / max(lrs[step]) for lr in lrs[step]] == pytest.approx(
            [lr / max(lrs[warmup]) for lr in lrs[warmup]]
        )


def test_no_warmup_starts_at_the_peak(tmp_path):
    lrs = lr_per_step(tmp_path, 10, warmup_ratio=0.0, learning_rate=1e-4, head_learning_rate=1e-3)
    assert max(lrs[0]) == pytest.approx(1e-3)
    assert max(lrs[5]) == pytest.approx(1e-3 * 5 / 10)


def test_schedule_state_survives_a_resume(tmp_path):
    config = AutoConfig.for_model("bert", vocab_size=50, **TINY_BERT)
    model = AttentionClassifier.from_config(config, [TaskSpec("intent", ("a", "b"), 1)])
    args = tiny_args(tmp_path, warmup_ratio=0.2, learning_rate=1e-4, head_learning_rate=1e-3)
    optimizer, scheduler = build_optimizer(model, args, 20)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save(saved, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=False)
    optimizer2, scheduler2 = build_optimizer(model, args, 20)
    optimizer2.load_state_dict(loaded["optimizer"])
    scheduler2.load_state_dict(loaded["scheduler"])
    assert max(g["lr"] for g in optimizer2.param_groups) == pytest.approx(1e-3 * 13 / 16)
