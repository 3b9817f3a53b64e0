"""The transfer set of a distilled student: more text than the labelled examples.

A student matches its teacher better the more of the teacher's function it sees (Hinton et
al. 2015 train on a "transfer set"; TinyBERT, Jiao et al. 2020, augments the task data
before distilling).  Two sources, both labelled by the teachers' soft labels only:

- **unlabelled in-domain text** (turns of the stream, the rest of a corpus): examples whose
  label is :data:`TEACHER_ONLY` for the tasks they stand for;
- **augmented copies** of the training examples (:func:`augment`): words dropped and
  neighbours swapped at random, so the student sees the teacher's answers near each
  example, not only at it.  A copy keeps its source's tasks, not its labels: a copy that
  lost its key word may no longer be that class, and the teacher says so.

Copies are made from the training part only, after the validation split: a copy of a
validation example would leak it into training.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from models.data.examples import Example

#: The label of a transfer example: learn the teachers' soft labels for this task only.
TEACHER_ONLY = "\x00teacher-only"
#: Chance that :func:`augment` drops a word, and that it swaps a word with its neighbour.
DROP = 0.1
SWAP = 0.1


def perturb(text: str, rng: random.Random, drop: float = DROP, swap: float = SWAP) -> str:
    """``text`` with words dropped (keeping at least one) and neighbours swapped at random."""
    words = text.split()
    kept = [w for w in words if rng.random() >= drop] or words[:1]
    for i in range(len(kept) - 1):
        if rng.random() < swap:
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)


def augment(examples: Sequence[Example], copies: int, seed: int = 0) -> list[Example]:
    """``copies`` perturbed copies of each example, labelled :data:`TEACHER_ONLY`.

    Copies identical to their source (short texts where nothing changed) are left out:
    they would only weigh the source double.
    """
    if copies < 0:
        msg = f"copies must be >= 0, got {copies}"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 - data augmentation, not security
    out = []
    for example in examples:
        for _ in range(copies):
            text = perturb(example.text, rng)
            if text != example.text:
                out.append(teacher_only(text, example.labels, example.group))
    return out


def unlabelled(texts: Sequence[str], tasks: Sequence[str], group: str) -> list[Example]:
    """Unlabelled in-domain texts as transfer examples for ``tasks``."""
    if not tasks:
        msg = "unlabelled texts need the tasks the teachers should label them for"
        raise ValueError(msg)
    return [teacher_only(t, dict.fromkeys(tasks, ""), group) for t in texts if t.strip()]


def teacher_only(text: str, tasks: dict[str, str] | Sequence[str], group: str) -> Example:
    """An example that learns only the teachers' soft labels of ``tasks``."""
    return Example(text, dict.fromkeys(tasks, TEACHER_ONLY), group)


def is_transfer(example: Example) -> bool:
    """Whether ``example`` carries no gold label, only tasks for the teachers."""
    return bool(example.labels) and all(v == TEACHER_ONLY for v in example.labels.values())
