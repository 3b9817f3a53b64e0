"""A labelled text: what every reader returns and every trainer and evaluator takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A text with labels for some tasks; ``group`` splits metrics (e.g. chat vs news)."""

    text: str
    labels: dict[str, str]
    group: str = "default"
