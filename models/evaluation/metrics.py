"""Accuracy and macro-F1 of a model on labelled examples, per task and per group."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from sklearn.metrics import f1_score  # type: ignore[import-untyped]
from transformers import PreTrainedTokenizerBase

from models.data.examples import Example
from models.encoding import encode
from models.modeling import AttentionClassifier


@dataclass
class TaskMetrics:
    """Scores of one task on one group of examples."""

    n: int
    accuracy: float
    macro_f1: float
    majority_baseline: float
    per_class_f1: dict[str, float] = field(default_factory=dict)


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Unweighted mean of per-class F1 over the classes present in ``gold``, and each class's F1.

    A label that is only ever predicted is not a class: it gets no F1 of its
    own, but each of its predictions is a miss of that example's gold class.
    A class never predicted correctly scores 0. Empty input gives ``(0.0, {})``;
    sequences of different lengths raise :class:`ValueError`.
    """
    if len(gold) != len(pred):
        msg = f"{len(gold)} gold labels but {len(pred)} predictions"
        raise ValueError(msg)
    classes = sorted(set(gold))
    if not classes:  # sklearn refuses empty input
        return 0.0, {}
    scores = f1_score(gold, pred, labels=classes, average=None, zero_division=0)
    per_class = {label: float(score) for label, score in zip(classes, scores, strict=True)}
    return sum(per_class.values()) / len(per_class), per_class


@torch.inference_mode()
def predict_logits(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    task: str,
    max_length: int,
    batch_size: int = 64,
) -> torch.Tensor:
    """Raw logits [N, C] of ``task`` for ``texts`` (eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks: list[torch.Tensor] = []
    for start in range(0, len(texts), batch_size):
        batch = encode(tokenizer, texts[start : start + batch_size], max_length).to(device)
        out = model(batch.input_ids, batch.attention_mask, batch.pool_mask, [task])[task]
        chunks.append(out.logits.float().cpu())
    model.train(was_training)
    if not chunks:
        return torch.zeros(0, len(model.tasks[task].labels))
    return torch.cat(chunks)


def predict_labels(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    task: str,
    max_length: int,
    batch_size: int = 64,
) -> list[str]:
    """Arg-max labels of ``task`` for ``texts``."""
    labels = model.tasks[task].labels
    logits = predict_logits(model, tokenizer, texts, task, max_length, batch_size)
    return [labels[int(i)] for i in logits.argmax(dim=-1).tolist()]


def evaluate(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    max_length: int,
) -> dict[str, dict[str, TaskMetrics]]:
    """Metrics keyed by task, then by group, for every labelled (task, group) pair.

    Examples whose label the model does not know (out-of-scope) are left out
    here; :mod:`models.evaluation.report` scores them against the unknown threshold.
    """
    results: dict[str, dict[str, TaskMetrics]] = {}
    for task in model.tasks:
        groups = sorted({e.group for e in examples if task in e.labels})
        for group in groups:
            known = set(model.tasks[task].labels)
            subset = [e for e in examples if e.group == group and e.labels.get(task) in known]
            if not subset:
                continue
            gold = [e.labels[task] for e in subset]
            pred = predict_labels(model, tokenizer, [e.text for e in subset], task, max_length)
            accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
            f1, per_class = macro_f1(gold, pred)
            majority = Counter(gold).most_common(1)[0][1] / len(gold)
            results.setdefault(task, {})[group] = TaskMetrics(
                len(gold), accuracy, f1, majority, per_class
            )
    return results
