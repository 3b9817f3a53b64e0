"""What the model page shows about the saved model directory (``settings.model_dir``).

Read from the directory's own files (see ``models.saving``): ``config.json`` (name,
version, encoder), ``labels.json``, ``metrics.json`` (the card's held-out numbers),
``calibration.json``, the last evaluation's ``eval-test/report.json`` (per-class scores
and confusion matrices) and the model card's "Explanation faithfulness" sections, which
``attnwatch explain-eval`` writes.  The files are parsed as JSON here rather than through
``models.saving.read_info``, which imports torch and transformers: seconds of start-up and
hundreds of MB for a page that only reads text.  A missing or unreadable file is reported
on the page (:attr:`ModelSummary.problems`), never raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The card section ``attnwatch explain-eval`` writes, one per task.
_FAITHFULNESS = re.compile(r"^## Explanation faithfulness: (?P<task>\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Table:
    """A small table to render: a title, a header row and rows of cells."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Evaluation:
    """The last evaluation of one task: labels, per-class scores and the confusion matrix."""

    task: str
    n: int
    accuracy: float | None
    macro_f1: float | None
    ece: float | None
    labels: list[str]
    confusion: list[list[int]]
    per_class: dict[str, dict[str, float]]


@dataclass(frozen=True)
class TaskTrustRow:
    """One task's attention faithfulness as training measured it (``models.training.trust``)."""

    task: str
    n: int
    comp_attention: float
    comp_gradient: float
    comp_random: float
    vs_random: float | None
    vs_gradient: float | None
    faithful: bool | None
    reason: str


@dataclass
class ModelSummary:
    """Everything the model page shows; empty fields were not found in the directory."""

    directory: Path
    name: str | None = None
    version: str | None = None
    created_at: str | None = None
    encoder: str | None = None
    max_length: int | None = None
    labels: dict[str, list[str]] = field(default_factory=dict)
    test_metrics: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    faithfulness: list[Table] = field(default_factory=list)
    #: Training's own faithfulness measurement per task (``metrics.json``'s ``faithfulness``).
    trust: list[TaskTrustRow] = field(default_factory=list)
    #: Calibration fields that are not numbers (e.g. which rule set the threshold).
    calibration_notes: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _json(directory: Path, name: str, problems: list[str]) -> Any:
    path = directory / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{name} could not be read: {exc}")
        return None


def read_labels(directory: Path) -> dict[str, list[str]]:
    """The model's labels per task (``labels.json``); empty when there is no model."""
    labels = _json(directory, "labels.json", [])
    if not isinstance(labels, dict):
        return {}
    return {str(k): [str(x) for x in v] for k, v in labels.items() if isinstance(v, list)}


def _test_metrics(metrics: Any) -> list[dict[str, Any]]:
    rows = []
    tests = metrics.get("test", {}) if isinstance(metrics, dict) else {}
    for task, groups in sorted(tests.items()):
        for group, values in sorted(groups.items()):
            rows.append({"task": task, "group": group, **values})
    return rows


def _evaluations(report: Any) -> list[Evaluation]:
    if not isinstance(report, dict):
        return []
    found = []
    for task, r in report.items():
        found.append(
            Evaluation(
                task=str(task),
                n=int(r.get("n", 0)),
                accuracy=r.get("accuracy"),
                macro_f1=r.get("macro_f1"),
                ece=r.get("ece"),
                labels=[str(x) for x in r.get("labels", [])],
                confusion=[[int(v) for v in row] for row in r.get("confusion", [])],
                per_class={str(k): dict(v) for k, v in r.get("per_class", {}).items()},
            )
        )
    return found


def _markdown_table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    body = [row for row in cells[1:] if not all(set(c) <= set("-:") for c in row)]
    return (cells[0], body) if cells else ([], [])


def faithfulness_tables(card: str) -> list[Table]:
    """The card's faithfulness tables (``attnwatch explain-eval``), one per task."""
    tables = []
    for match in _FAITHFULNESS.finditer(card):
        section = card[match.end() :].split("\n## ", 1)[0]
        table_lines = [line for line in section.splitlines() if line.strip().startswith("|")]
        notes = [
            line.strip()
            for line in section.splitlines()
            if line.strip() and not line.strip().startswith(("|", "#"))
        ]
        header, rows = _markdown_table(table_lines)
        if header:
            title = f"Explanation faithfulness: {match.group('task')}"
            tables.append(Table(title, header, rows, " ".join(notes)))
    return tables


def trust_rows(metrics: Any) -> list[TaskTrustRow]:
    """Training's faithfulness verdicts from ``metrics.json`` (none for older models)."""
    found = metrics.get("faithfulness") if isinstance(metrics, dict) else None
    if not isinstance(found, dict):
        return []
    rows = []
    for task, t in sorted(found.items()):
        comp = t.get("comprehensiveness", {})
        faithful = t.get("faithful")
        rows.append(
            TaskTrustRow(
                task=str(task),
                n=int(t.get("n", 0)),
                comp_attention=float(comp["attention"]),
                comp_gradient=float(comp["grad_x_input"]),
                comp_random=float(comp["random"]),
                vs_random=_optional_float(t.get("vs_random")),
                vs_gradient=_optional_float(t.get("vs_gradient")),
                faithful=faithful if isinstance(faithful, bool) else None,
                reason=str(t.get("reason", "")),
            )
        )
    return rows


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def read_summary(directory: Path) -> ModelSummary:
    """What the model directory says about the model; problems are listed, not raised."""
    summary = ModelSummary(directory)
    if not directory.is_dir():
        summary.problems.append(f"no model directory at {directory}")
        return summary
    problems = summary.problems
    config = _json(directory, "config.json", problems)
    if isinstance(config, dict):
        summary.name = config.get("name")
        summary.version = config.get("version")
        summary.created_at = config.get("created_at")
        summary.encoder = config.get("encoder_source")
        summary.max_length = config.get("max_length")
    else:
        problems.append("config.json is missing: not a saved attnwatch model")
    summary.labels = read_labels(directory)
    # A file from another attnwatch version may be laid out differently: say so, show the rest.
    metrics = _json(directory, "metrics.json", problems)
    try:
        summary.test_metrics = _test_metrics(metrics)
        summary.trust = trust_rows(metrics)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        problems.append(f"metrics.json has an unexpected layout: {exc}")
    calibration = _json(directory, "calibration.json", problems)
    try:
        if isinstance(calibration, dict):
            summary.calibration = {
                str(k): float(v)
                for k, v in calibration.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            summary.calibration_notes = {
                str(k): str(v) for k, v in calibration.items() if isinstance(v, str)
            }
    except (TypeError, ValueError) as exc:
        problems.append(f"calibration.json has an unexpected layout: {exc}")
    try:
        summary.evaluations = _evaluations(_json(directory, "eval-test/report.json", problems))
    except (TypeError, ValueError, AttributeError) as exc:
        problems.append(f"eval-test/report.json has an unexpected layout: {exc}")
    card = directory / "README.md"
    if card.is_file():
        summary.faithfulness = faithfulness_tables(card.read_text(encoding="utf-8"))
    return summary
