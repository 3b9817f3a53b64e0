"""Evaluate a saved model on labelled data: reports, confusion matrices, calibration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from models.classifier import UNKNOWN, resolve_device
from models.data.examples import Example
from models.evaluation.metrics import predict_logits
from models.evaluation.report import (
    ClassificationReport,
    classification_report,
    render_markdown,
    write_confusion_csv,
    write_confusion_png,
)
from models.saving import load_model


def assess(
    model_dir: Path,
    examples: Sequence[Example],
    output_dir: Path,
    tasks: Sequence[str] | None = None,
    device: str = "auto",
) -> dict[str, ClassificationReport]:
    """Score every task of the model that ``examples`` are labelled for; write the files.

    Intent uses the model's calibration (temperature, unknown threshold) exactly
    as inference does, so out-of-scope recall is measured on what production does.
    Writes ``report.md``, ``report.json`` and ``confusion_<task>.csv/.png``.
    """
    loaded = load_model(model_dir, resolve_device(device))
    calibration = loaded.calibration or {}
    temperature = float(calibration.get("temperature", 1.0))
    threshold = calibration.get("unknown_threshold")
    output_dir.mkdir(parents=True, exist_ok=True)
    reports: dict[str, ClassificationReport] = {}
    sections = []
    for spec in loaded.info.tasks:
        if tasks is not None and spec.name not in tasks:
            continue
        rows = [e for e in examples if spec.name in e.labels]
        if not rows:
            continue
        logits = predict_logits(
            loaded.model,
            loaded.tokenizer,
            [e.text for e in rows],
            spec.name,
            loaded.info.max_length,
        )
        if spec.name == "intent":
            logits = logits / temperature
        probs = torch.softmax(logits, dim=-1)
        confidence, index = probs.max(dim=-1)
        pred = [spec.labels[int(i)] for i in index.tolist()]
        if spec.name == "intent" and threshold is not None:
            pred = [
                UNKNOWN if float(c) < float(threshold) else p
                for p, c in zip(pred, confidence.tolist(), strict=True)
            ]
        gold = [e.labels[spec.name] for e in rows]
        report = classification_report(gold, pred, probs, label_order=spec.labels)
        reports[spec.name] = report
        write_confusion_csv(report, output_dir / f"confusion_{spec.name}.csv")
        write_confusion_png(
            report,
            output_dir / f"confusion_{spec.name}.png",
            title=f"{loaded.info.name}@{loaded.info.version}: {spec.name}",
        )
        sections.append(render_markdown(report, f"{spec.name} ({len(rows)} examples)"))
    if not reports:
        msg = "the data has no labels for any task of this model"
        raise ValueError(msg)
    header = f"# Evaluation of {loaded.info.name}@{loaded.info.version}\n\n"
    (output_dir / "report.md").write_text(header + "\n\n".join(sections) + "\n", "utf-8")
    (output_dir / "report.json").write_text(
        json.dumps({t: r.to_dict() for t, r in reports.items()}, indent=2) + "\n", "utf-8"
    )
    return reports


def add_test_report(directory: Path, test: Sequence[Example], device: str) -> None:
    """Score the saved model on the test split as inference does; add it to the card.

    Writes ``eval-test/`` (report, confusion matrices as CSV and PNG) and appends
    its summary to the model card.
    """
    reports = assess(directory, test, directory / "eval-test", device=device)
    sections = [
        render_markdown(report, f"{task} on the test split (as served, with calibration)")
        for task, report in reports.items()
    ]
    files = ", ".join(f"`eval-test/confusion_{task}.png`" for task in reports)
    card = directory / "README.md"
    card.write_text(
        card.read_text(encoding="utf-8").rstrip()
        + "\n\n## Test report\n\n"
        + f"Confusion matrices: {files} (CSV beside them).\n\n"
        + "\n\n".join(sections)
        + "\n",
        encoding="utf-8",
    )
