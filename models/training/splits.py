"""What a training run trains on: its tasks, the labels kept, and the validation split."""

from __future__ import annotations

from collections.abc import Sequence

from models.data.examples import Example
from models.data.seed import stratified_split
from models.modeling import TaskSpec


def tasks_from(examples: Sequence[Example], num_heads: int = 1) -> list[TaskSpec]:
    """One task per label key, labels sorted for a stable label map."""
    names = sorted({task for e in examples for task in e.labels})
    return [
        TaskSpec(n, tuple(sorted({e.labels[n] for e in examples if n in e.labels})), num_heads)
        for n in names
    ]


def restrict(examples: Sequence[Example], tasks: Sequence[str] | None) -> list[Example]:
    """Keep only the labels of ``tasks`` (all if None); drop examples left with none."""
    if tasks is None:
        return list(examples)
    kept = []
    for e in examples:
        labels = {t: v for t, v in e.labels.items() if t in tasks}
        if labels:
            kept.append(Example(e.text, labels, e.group))
    return kept


def split_validation(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A stratified validation split (by group and every label of the example)."""

    def key(e: Example) -> str:
        return e.group + "|" + "|".join(f"{t}={v}" for t, v in sorted(e.labels.items()))

    return stratified_split(list(examples), key=key, test_fraction=fraction, seed=seed)
