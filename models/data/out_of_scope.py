"""Out-of-scope intents: which rows mean "none of the trained intents", and what to do with them.

A row is out of scope (OOS) when its intent is one of :data:`OOS_LABELS` (``oos`` as in
CLINC150, ``out_of_scope`` or ``unknown``, in any case) or, in validation data, any intent the
model was not trained on: an intent held out entirely, as in the Banking77-OOS protocol
(``bench/banking77_oos.py``). OOS rows are never trained on; in validation they set the
``unknown`` threshold and nothing else (:mod:`models.evaluation.calibration`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.data.datasets import OOS
from models.data.examples import Example

INTENT = "intent"
#: Intent labels that always mean out of scope, compared in lower case.
OOS_LABELS = frozenset({OOS, "out_of_scope", "unknown"})


def is_oos_label(label: str) -> bool:
    """Whether ``label`` is one of :data:`OOS_LABELS` (any case, surrounding spaces ignored)."""
    return label.strip().lower() in OOS_LABELS


def split_out_of_scope(examples: Iterable[Example]) -> tuple[list[Example], list[Example]]:
    """The rows that may be trained on, and the rows whose intent is an OOS label."""
    kept: list[Example] = []
    oos: list[Example] = []
    for example in examples:
        intent = example.labels.get(INTENT)
        (oos if intent is not None and is_oos_label(intent) else kept).append(example)
    return kept, oos


@dataclass(frozen=True)
class ValidationScope:
    """How a validation set's intent rows divide into in scope and out of scope."""

    n_in_scope: int
    n_oos: int
    #: Each out-of-scope intent label with its row count, most frequent first.
    oos_labels: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the CLI, e.g. ``620 in-scope, 540 out-of-scope (oos 500, ...)``."""
        line = f"{self.n_in_scope} in-scope, {self.n_oos} out-of-scope intent rows"
        if self.oos_labels:
            shown = list(self.oos_labels.items())[:8]
            more = len(self.oos_labels) - len(shown)
            labels = ", ".join(f"{label} {n}" for label, n in shown)
            line += f" ({labels}{f', and {more} more labels' if more else ''})"
        return line


def validation_scope(
    validation: Sequence[Example], trained: Mapping[str, set[str]], source: Path | str
) -> ValidationScope:
    """Divide ``validation``'s intent rows by ``trained`` labels per task; check it is usable.

    ``trained`` maps each trained task to its training labels. Raises :class:`ValueError`
    naming ``source`` when no row carries a trained task's known label (nothing to stop early
    or calibrate on), or when intent is trained and every intent row is out of scope.
    """
    if not validation:
        msg = f"validation data {source} has no rows"
        raise ValueError(msg)
    usable = any(
        e.labels.get(task) in labels for e in validation for task, labels in trained.items()
    )
    if not usable:
        tasks = ", ".join(sorted(trained)) or "none"
        msg = (
            f"validation data {source} has no in-scope rows: none of its labels is a training "
            f"label of the trained task(s) ({tasks})"
        )
        raise ValueError(msg)
    intents = trained.get(INTENT)
    rows = [e.labels[INTENT] for e in validation if INTENT in e.labels]
    if intents is None or not rows:
        return ValidationScope(len(rows), 0)
    outside = Counter(label for label in rows if label not in intents)
    n_in_scope = len(rows) - sum(outside.values())
    if n_in_scope == 0:
        msg = (
            f"validation data {source} has no in-scope intent rows: all {len(rows)} are out of "
            f"scope for the {len(intents)} trained intents"
        )
        raise ValueError(msg)
    return ValidationScope(n_in_scope, sum(outside.values()), dict(outside.most_common()))
