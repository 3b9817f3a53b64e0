"""Fast tier (issue 14): the default model vs. a shallower student distilled from it.

    python bench/fast_tier.py                      # seed, Banking77, PhraseBank 50%-agree
    python bench/fast_tier.py --datasets banking77 --student-layers 3
    python bench/fast_tier.py --datasets phrasebank --folds 2
    python bench/fast_tier.py --smoke              # tiny random encoders: checks the script

For each data set the teacher is trained with the default recipe (``TrainingArgs``
defaults, ``--epochs``/``--max-length`` to override), or taken from ``--teacher-dir``.
The student starts from the same pretrained encoder with only ``--student-layers`` of its
layers (``encoder_layers``: the bottom ones, see ``models/fast/layers.py``) and learns
the teacher's soft labels with the existing distillation (weight and temperature at their
defaults).  Both choose their epoch on a validation split of their own training data; the
test split only reports.  Tiers: teacher and student on torch, and both exported to ONNX
dynamic int8 when ``models.fast.onnx_export`` can be imported.  Each tier is scored on the
test split for

- accuracy and macro-F1 per task and group (arg-max over the known labels, as in the model
  cards: the calibrated ``unknown`` intent is not applied);
- texts/s of ``predict`` over the whole test split (evaluation device, default CPU) and
  the size of the weight files;
- faithfulness of the logged words: ERASER comprehensiveness at 20 % of the words
  (``models.explain.faithfulness``), attention vs. a seeded random ranking, on a seeded
  sample of ``--faith-limit`` test texts.  ``via predict`` ranks the words ``predict``
  logs and scores texts with words removed through ``predict`` (the calibrated scores):
  the same measure for every runtime.  ``via model`` (torch only) is the measure of
  ``attnwatch model explain-eval`` (pooling attention, raw softmax).

Data: ``seed`` is the 80/20 seed split ``attnwatch train`` uses; ``banking77`` trains on
train.csv and reports on test.csv; ``phrasebank`` is Sentences_50Agree.txt with the 10
stratified folds (seed 0) of ``bench/sentiment_cv.py``, ``--folds K`` running the first K.
Models are written under ``--work-dir``; an interrupted run is continued with ``--reuse``
(finished models are kept, unfinished ones resume from their checkpoint).

Student variants (issue 27) live side by side under ``--student-name``: ``--augment K``
distils on K perturbed copies of each training text too, ``--unlabelled`` (with
``--limit-train``) on the training texts outside the sample, without their labels
(``models.training.transfer``); ``--fuse`` and ``--serve-max-length`` change the int8
exports (fused attention kernels, shorter truncation; ``models.fast.fusion``), and
``--tiers`` measures only some tiers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]
from tqdm.auto import tqdm

from models.classifier import TextClassifier
from models.data.datasets import load_banking77, load_phrasebank
from models.data.examples import Example
from models.data.loading import seed_examples
from models.data.seed import data_hash
from models.encoding import encode
from models.evaluation.metrics import macro_f1
from models.explain.faithfulness import (
    RANDOM,
    faithfulness,
    random_rankings,
    ranking_from_scores,
    split_words,
    word_attributions,
)
from models.fast.int8_settings import cpu_features, describe_cpu
from models.saving import load_model
from models.training.splits import restrict, split_validation
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs
from models.training.transfer import unlabelled

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
K = 0.2  # comprehensiveness at 20 % of the words
#: A randomly initialised BERT for --smoke (as the tests' tiny model, with 4 layers).
SMOKE_BERT = {
    "hidden_size": 48,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "max_position_embeddings": 128,
}
ALL_LABELS = 10_000
TIERS = ("teacher torch", "student torch", "teacher onnx-int8", "student onnx-int8")

log = logging.getLogger("fast_tier")


def phrasebank_folds(labels: list[str], k: int = 10, seed: int = 0) -> list[list[int]]:
    """Held-out indices of the folds of ``bench/sentiment_cv.py`` (same splitter, same seed)."""
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test.tolist() for _, test in splitter.split(np.zeros(len(labels)), labels)]


def sample_rest(
    examples: list[Example], limit: int | None, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """:func:`sample`'s examples and the ones it left out (same seed, same choice)."""
    if limit is None or limit >= len(examples):
        return examples, []
    chosen = random.Random(seed).sample(range(len(examples)), limit)
    taken = set(chosen)
    return [examples[i] for i in chosen], [e for i, e in enumerate(examples) if i not in taken]


def runs_of(name: str, folds: int) -> list[tuple[str, list[Example], list[Example], str]]:
    """(run name, train, test, data hash) of each run of data set ``name``."""
    if name == "seed":
        train, test, digest = seed_examples()
        return [("seed", train, test, digest)]
    if name == "banking77":
        folder = DATASETS / "banking77"
        train, test = load_banking77(folder / "train.csv"), load_banking77(folder / "test.csv")
        return [("banking77", train, test, data_hash(folder / "train.csv"))]
    if name == "phrasebank":
        path = DATASETS / "financial_phrasebank" / "Sentences_50Agree.txt"
        examples, digest = load_phrasebank(path), data_hash(path)
        held = phrasebank_folds([e.labels["sentiment"] for e in examples])
        runs = []
        for number, held_out in enumerate(held[:folds]):
            out = set(held_out)
            train = [e for i, e in enumerate(examples) if i not in out]
            test = [examples[i] for i in held_out]
            runs.append((f"phrasebank/fold{number}", train, test, digest))
        return runs
    msg = f"unknown data set {name!r}; choose from seed, banking77, phrasebank"
    raise ValueError(msg)


def sample(examples: list[Example], limit: int | None, seed: int = 0) -> list[Example]:
    """A seeded random sample of ``limit`` examples (all of them when None or fewer)."""
    if limit is None or limit >= len(examples):
        return examples
    return random.Random(seed).sample(examples, limit)


def train_args(opts: argparse.Namespace, output_dir: Path, name: str, **extra: Any) -> TrainingArgs:
    """The default recipe, with the benchmark's overrides (and --smoke's tiny encoder)."""
    values: dict[str, Any] = {
        "output_dir": output_dir,
        "name": name,
        "device": opts.device,
        "resume": opts.reuse,
        "encoder": opts.encoder,
    }
    if opts.epochs is not None:
        values["epochs"] = opts.epochs
    if opts.max_length is not None:
        values["max_length"] = opts.max_length
    if opts.no_trust:
        values["faithfulness_sample"] = 0  # no faithfulness check, so no retry
    if opts.smoke:
        values.update(random_encoder_config=SMOKE_BERT, learning_rate=5e-3, head_learning_rate=5e-3)
    return TrainingArgs(**values, **extra)


def trained(
    args: TrainingArgs,
    train: list[Example],
    test: list[Example],
    digest: str,
    reuse: bool,
    transfer: Sequence[Example] = (),
) -> tuple[Path, float]:
    """Train (or, with --reuse, keep a finished) model; its directory and training seconds."""
    metrics_file = args.output_dir / "metrics.json"
    if reuse and metrics_file.is_file():
        log.info("reusing %s", args.output_dir)
    else:
        Trainer(args).train(train, test, digest, transfer=transfer)
    return args.output_dir, float(json.loads(metrics_file.read_text())["train_seconds"])


def weights_mb(directory: Path) -> float:
    """Size of the weight files of a model directory, in MB."""
    files = [p for p in directory.iterdir() if p.suffix in {".safetensors", ".onnx", ".data"}]
    return sum(p.stat().st_size for p in files) / 1e6


def layers_of(directory: Path) -> int | None:
    """The encoder depth a model directory records."""
    encoder = json.loads((directory / "config.json").read_text()).get("encoder", {})
    layers = encoder.get("num_hidden_layers")
    return int(layers) if layers is not None else None


def accuracy_by_group(
    classifier: TextClassifier, test: list[Example]
) -> tuple[dict[str, dict[str, dict[str, float]]], float, dict[str, list[str]]]:
    """Accuracy and macro-F1 per task and group, the seconds ``predict`` took, the labels."""
    texts = [e.text for e in test]
    classifier.predict(texts[:8])  # warm-up: lazy initialisation is not the tier's speed
    started = time.perf_counter()
    predictions = classifier.predict(texts)
    seconds = time.perf_counter() - started
    scores: dict[str, dict[str, dict[str, float]]] = {}
    tasks = sorted({t for e in test for t in e.labels})
    labels = {t: [p[t].top[0][0] for p in predictions] for t in tasks}  # arg-max, known labels
    for task in tasks:
        for group in sorted({e.group for e in test if task in e.labels}):
            rows = [i for i, e in enumerate(test) if task in e.labels and e.group == group]
            gold = [test[i].labels[task] for i in rows]
            pred = [predictions[i][task].top[0][0] for i in rows]  # arg-max over known labels
            f1, _ = macro_f1(gold, pred)
            accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(rows)
            scores.setdefault(task, {})[group] = {
                "n": len(rows),
                "accuracy": accuracy,
                "macro_f1": f1,
            }
    return scores, seconds, labels


def logged_word_scores(text: str, logged: Sequence[Any]) -> list[float]:
    """The logged word weights on the display words of ``text`` (0 for words not logged)."""
    words = split_words(text)
    scores = [0.0] * len(words)
    position = 0
    for word in logged:  # logged words come in text order; truncated ones are missing
        while position < len(words) and words[position] != word.word:
            position += 1
        if position == len(words):
            break
        scores[position] = word.weight
        position += 1
    return scores


def comp_summary(results: dict[str, Any]) -> dict[str, float | int | None]:
    """Comprehensiveness@20 % of attention and random, and their ratio."""
    ours = results["attention"].comprehensiveness[K]
    theirs = results[RANDOM].comprehensiveness[K]
    return {
        "n": results["attention"].n,
        "attention": round(ours, 4),
        "random": round(theirs, 4),
        "ratio": round(ours / theirs, 2) if theirs > 0 else None,
    }


def faith_via_predict(
    classifier: TextClassifier, texts: list[str], task: str
) -> dict[str, float | int | None]:
    """Comprehensiveness of the words ``predict`` logs, scored through ``predict``."""
    labels = next(t.labels for t in classifier.info.tasks if t.name == task)
    index = {label: i for i, label in enumerate(labels)}

    def prob_fn(batch: list[str]) -> torch.Tensor:
        probs = torch.zeros(len(batch), len(labels))
        for row, prediction in enumerate(classifier.predict(batch, [task])):
            for label, score in prediction[task].top:  # top_k = every label
                probs[row, index[label]] = score
        return probs

    logged = classifier.predict(texts, [task])
    rankings = {
        "attention": [
            ranking_from_scores(logged_word_scores(t, p[task].words))
            for t, p in zip(texts, logged, strict=True)
        ],
        RANDOM: random_rankings([len(split_words(t)) for t in texts], seed=0),
    }
    return comp_summary(faithfulness(prob_fn, texts, rankings, ks=(K,), aopc_bins=(K,)))


def faith_via_model(directory: Path, texts: list[str], task: str, device: str) -> dict[str, Any]:
    """Comprehensiveness as ``attnwatch model explain-eval`` measures it (torch only)."""
    loaded = load_model(directory, device)
    model, tokenizer = loaded.model, loaded.tokenizer
    scores = word_attributions(
        model, tokenizer, texts, task, loaded.info.max_length, methods=("attention",)
    )
    rankings = {
        "attention": [ranking_from_scores(s) for s in scores["attention"]],
        RANDOM: random_rankings([len(split_words(t)) for t in texts], seed=0),
    }
    model_device = next(model.parameters()).device

    @torch.inference_mode()
    def prob_fn(batch: list[str]) -> torch.Tensor:
        encoded = encode(tokenizer, batch, loaded.info.max_length).to(model_device)
        out = model(encoded.input_ids, encoded.attention_mask, encoded.pool_mask, [task])
        return torch.softmax(out[task].logits.float(), dim=-1).cpu()

    return comp_summary(faithfulness(prob_fn, texts, rankings, ks=(K,), aopc_bins=(K,)))


def onnx_tools() -> tuple[Callable[..., Path] | None, Callable[..., TextClassifier], str]:
    """``export_onnx`` (None when unavailable), ``open_classifier`` and why not."""
    from models.classifier import AttentionTextClassifier

    def torch_only(directory: Path, device: str, runtime: str, **options: Any) -> TextClassifier:
        return AttentionTextClassifier(directory, device, **options)

    if importlib.util.find_spec("models.fast.onnx_export") is None:
        return None, torch_only, "models.fast.onnx_export does not exist"
    try:
        from models.fast import open_classifier  # type: ignore[attr-defined]
    except ImportError:
        try:
            from models.fast.loading import open_classifier
        except ImportError as exc:
            return None, torch_only, f"open_classifier: {exc}"
    try:
        from models.fast.onnx_export import export_onnx
    except ImportError as exc:
        return None, open_classifier, f"models.fast.onnx_export: {exc}"
    return export_onnx, open_classifier, ""


def run_one(
    opts: argparse.Namespace,
    run: str,
    train: list[Example],
    test: list[Example],
    digest: str,
    tools: tuple[Callable[..., Path] | None, Callable[..., TextClassifier], str],
    rest: Sequence[Example] = (),
) -> dict[str, Any]:
    """Teacher, student, their ONNX exports and every tier's scores for one run.

    ``rest``: training texts outside the sample, the student's unlabelled transfer texts
    with ``--unlabelled``.
    """
    export_onnx, open_classifier, onnx_missing = tools
    folder = opts.work_dir / run
    label = run.replace("/", "-")
    record: dict[str, Any] = {"run": run, "n_train": len(train), "n_test": len(test)}
    started = time.perf_counter()
    if opts.teacher_dir is not None:
        teacher, teacher_seconds = opts.teacher_dir, None
    else:
        teacher, teacher_seconds = trained(
            train_args(opts, folder / "teacher", f"fast-tier-teacher-{label}"),
            train,
            test,
            digest,
            opts.reuse,
        )
    student: Path | None = None
    student_seconds: float | None = None
    if not opts.no_student:
        tasks = sorted({t for e in train for t in e.labels})
        transfer = (
            unlabelled([e.text for e in rest], tasks, "unlabelled") if opts.unlabelled else []
        )
        student, student_seconds = trained(
            train_args(
                opts,
                folder / opts.student_name,
                f"fast-tier-{opts.student_name}-{label}",
                teachers=(teacher,),
                encoder_layers=opts.student_layers,
                augment_copies=opts.augment,
            ),
            train,
            test,
            digest,
            opts.reuse,
            transfer,
        )
    record["train_seconds"] = {"teacher": teacher_seconds, "student": student_seconds}
    directories: dict[str, Path | None] = {"teacher torch": teacher, "student torch": student}
    record["export_seconds"] = {}
    # The int8 export's agreement bar is checked on the training run's own validation split
    # (recomputed as the trainer makes it): in-domain texts, never the test split.
    args = train_args(opts, folder / "teacher", "validation")
    _, validation = split_validation(
        restrict(train, args.tasks), args.val_fraction, args.validation_seed
    )
    suffix = ("-fused" if opts.fuse else "") + (
        f"-len{opts.serve_max_length}" if opts.serve_max_length else ""
    )
    for role, source in (("teacher", teacher), ("student", student)):
        tier = f"{role} onnx-int8"
        if tier not in opts.tiers:
            directories[tier] = None
            continue
        if source is None:
            directories[tier] = None
            record.setdefault("errors", {})[tier] = "not trained (--no-student)"
            continue
        if export_onnx is None:
            directories[tier] = None
            continue
        begun = time.perf_counter()
        try:
            name = (opts.student_name if role == "student" else role) + "-onnx-int8" + suffix
            directories[tier] = export_onnx(
                source,
                folder / name,
                int8=True,
                validation=[e.text for e in validation],
                validation_name=f"{run} validation split",
                fuse=opts.fuse,
                max_length=opts.serve_max_length,
            )
        except Exception as exc:  # reported in the results, the other tiers still run
            log.warning("ONNX export of %s failed: %s", source, exc)
            directories[tier] = None
            record.setdefault("errors", {})[tier] = f"export: {exc}"
        record["export_seconds"][role] = round(time.perf_counter() - begun, 1)

    faith_test = sample(test, opts.faith_limit, seed=1)
    record["tiers"] = {}
    labels: dict[str, dict[str, list[str]]] = {}
    for tier in tqdm(TIERS, desc=f"{run}: tiers", unit="tier"):
        directory = directories.get(tier)
        if tier not in opts.tiers:
            record["tiers"][tier] = {"measured": False, "reason": "not asked for (--tiers)"}
            continue
        if directory is None:
            reason = record.get("errors", {}).get(tier) or onnx_missing
            if tier == "student torch" and student is None:
                reason = "not trained (--no-student)"
            record["tiers"][tier] = {"measured": False, "reason": reason}
            continue
        runtime = "onnx" if "onnx" in tier else "torch"
        # top_k beyond the label count gives every label's score (faithfulness needs them)
        classifier = open_classifier(directory, opts.eval_device, runtime, top_k=ALL_LABELS)
        scores, seconds, labels[tier] = accuracy_by_group(classifier, test)
        entry: dict[str, Any] = {
            "measured": True,
            "directory": str(directory),
            "layers": layers_of(teacher if tier.startswith("teacher") else student or directory),
            "weights_mb": round(weights_mb(directory), 1),
            "scores": scores,
            "predict_seconds": round(seconds, 2),
            "texts_per_second": round(len(test) / seconds, 1) if seconds > 0 else None,
            "faithfulness": {},
        }
        for task in scores:
            texts = [e.text for e in faith_test if task in e.labels]
            faith: dict[str, Any] = {"via predict": faith_via_predict(classifier, texts, task)}
            if runtime == "torch":
                faith["via model"] = faith_via_model(directory, texts, task, opts.eval_device)
            entry["faithfulness"][task] = faith
        if tier.endswith("onnx-int8"):
            entry.update(int8_agreement(directory, labels, tier))
        record["tiers"][tier] = entry
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def int8_agreement(
    directory: Path, labels: dict[str, dict[str, list[str]]], tier: str
) -> dict[str, Any]:
    """An int8 tier's label agreement with its torch tier on the test split, and the export's
    own record (settings, agreement on the validation texts, CPU) from its metrics.json."""
    torch_tier = tier.replace("onnx-int8", "torch")
    agreement = {
        task: round(
            sum(a == b for a, b in zip(ours, labels[torch_tier][task], strict=True)) / len(ours),
            4,
        )
        for task, ours in labels[tier].items()
        if torch_tier in labels
    }
    metrics = json.loads((directory / "metrics.json").read_text(encoding="utf-8"))
    return {"test_agreement_with_torch": agreement, "export": metrics.get("onnx_int8")}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over a data set's runs (PhraseBank folds) per tier, task and group."""
    summary: dict[str, Any] = {}
    for tier in TIERS:
        measured = [r["tiers"][tier] for r in records if r["tiers"][tier]["measured"]]
        if not measured:
            continue
        rows: dict[str, Any] = {}
        for task, groups in measured[0]["scores"].items():
            for group in groups:
                scores = [m["scores"][task][group] for m in measured]
                ratios = [m["faithfulness"][task]["via predict"]["ratio"] for m in measured]
                rows[f"{task}/{group}"] = {
                    "runs": len(measured),
                    "accuracy": _mean_std([x["accuracy"] for x in scores]),
                    "macro_f1": _mean_std([x["macro_f1"] for x in scores]),
                    "comp20_ratio_via_predict": _mean_std([x for x in ratios if x is not None]),
                }
        speeds = [m["texts_per_second"] for m in measured if m["texts_per_second"]]
        summary[tier] = {
            "layers": measured[0]["layers"],
            "weights_mb": measured[0]["weights_mb"],
            "texts_per_second": _mean_std(speeds),
            "by_task": rows,
        }
    return summary


def _mean_std(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 4), "std": round(std, 4)}


def _cell(stat: dict[str, float | None], digits: int = 4) -> str:
    if stat["mean"] is None:
        return "n/a"
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if stat["std"] else "")


def render(report: dict[str, Any]) -> str:
    """The Markdown tables of a report."""
    lines = [
        "# Fast tier: default model vs. distilled student, torch vs. ONNX int8",
        "",
        f"`{report['command']}`",
        "",
        f"- started {report['started_at']}, {report['seconds']:.0f} s in all",
        f"- machine: {report['machine']['cpu_cores']} CPU cores ({report['machine']['platform']}"
        f"), torch {report['machine']['torch']} with {report['machine']['torch_threads']} "
        f"threads, GPU {report['machine']['gpu'] or 'none'}; evaluation on "
        f"{report['settings']['eval_device']}",
        f"- student: {report['settings']['student_layers']} encoder layers (the bottom ones), "
        "distilled from the teacher with the default weight and temperature",
        f"- ONNX int8: {report['onnx'] or 'available'}",
        f"- CPU: {describe_cpu(report['machine']['cpu'])}",
        "",
    ]
    for name, data in report["datasets"].items():
        runs = data["runs"]
        lines += [f"## {name} ({len(runs)} run{'s' if len(runs) > 1 else ''})", ""]
        lines += [
            "| tier | layers | weights MB | task/group | accuracy | macro-F1 | texts/s "
            "| comp@20 attention ÷ random (via predict) |",
            "|---|---:|---:|---|---:|---:|---:|---:|",
        ]
        for tier in TIERS:
            if tier not in data["summary"]:
                reason = runs[0]["tiers"][tier].get("reason", "")
                lines.append(f"| {tier} | | | not measured: {reason} | | | | |")
                continue
            s = data["summary"][tier]
            for key, row in s["by_task"].items():
                lines.append(
                    f"| {tier} | {s['layers']} | {s['weights_mb']} | {key} "
                    f"| {_cell(row['accuracy'])} | {_cell(row['macro_f1'])} "
                    f"| {_cell(s['texts_per_second'], 1)} "
                    f"| {_cell(row['comp20_ratio_via_predict'], 2)} |"
                )
        lines += ["", "Faithfulness per run (comp@20: attention / random = ratio):", ""]
        lines += ["| run | tier | task | via predict | via model |", "|---|---|---|---|---|"]
        for record in runs:
            for tier, entry in record["tiers"].items():
                for task, faith in entry.get("faithfulness", {}).items():
                    cells = [
                        _faith_cell(faith.get("via predict")),
                        _faith_cell(faith.get("via model")),
                    ]
                    lines.append(
                        f"| {record['run']} | {tier} | {task} | " + " | ".join(cells) + " |"
                    )
        lines += int8_lines(runs)
        times = "; ".join(
            f"{r['run']}: teacher {_seconds(r['train_seconds']['teacher'])}, "
            f"student {_seconds(r['train_seconds']['student'])}, whole run {r['seconds']:.0f} s"
            for r in runs
        )
        lines += ["", f"Training: {times}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def int8_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Each int8 tier's label agreement with its torch tier (test split, export's texts)."""
    lines = ["", "int8 vs torch, same labels (test split; the export's validation texts):", ""]
    for record in runs:
        for tier, entry in record["tiers"].items():
            if "test_agreement_with_torch" not in entry:
                continue
            export = entry.get("export") or {}
            test = ", ".join(
                f"{t} {100 * a:.1f} %" for t, a in entry["test_agreement_with_torch"].items()
            )
            own = export.get("label_agreement_with_torch", {})
            valid = ", ".join(f"{t} {100 * a:.1f} %" for t, a in own.items()) or "n/a"
            lines.append(
                f"- {record['run']} {tier} ({export.get('settings')}): test {test}; "
                f"validation ({export.get('validation_texts')} texts) {valid}"
            )
    return lines


def _seconds(value: float | None) -> str:
    return "given or not trained" if value is None else f"{value:.0f} s"


def _faith_cell(faith: dict[str, Any] | None) -> str:
    if not faith:
        return "n/a"
    ratio = "n/a" if faith["ratio"] is None else f"{faith['ratio']:.2f}x"
    return f"{faith['attention']:.3f} / {faith['random']:.3f} = {ratio} (n={faith['n']})"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="seed,banking77,phrasebank")
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainingArgs'")
    parser.add_argument("--max-length", type=int, default=None, help="default: TrainingArgs'")
    parser.add_argument("--student-layers", "--encoder-layers", type=int, default=3)
    parser.add_argument(
        "--student-name", default="student", help="the student's folder under each run"
    )
    parser.add_argument(
        "--augment", type=int, default=0, help="student: perturbed copies per training text"
    )
    parser.add_argument(
        "--unlabelled",
        action="store_true",
        help="student: distil on the training texts outside --limit-train's sample too",
    )
    parser.add_argument("--fuse", action="store_true", help="int8 exports: fused kernels")
    parser.add_argument(
        "--serve-max-length", type=int, default=None, help="int8 exports: truncate shorter"
    )
    parser.add_argument(
        "--tiers", default=",".join(TIERS), help=f"comma-separated, of: {', '.join(TIERS)}"
    )
    parser.add_argument("--folds", type=int, default=10, help="PhraseBank: the first K folds")
    parser.add_argument(
        "--teacher-dir",
        type=Path,
        default=None,
        help="a trained teacher (one data set, one fold) instead of training one",
    )
    parser.add_argument("--encoder", default=None, help="default: the offline MiniLM-L6")
    parser.add_argument("--faith-limit", type=int, default=300)
    parser.add_argument("--limit-train", type=int, default=None, help="seeded sample (quick runs)")
    parser.add_argument("--limit-test", type=int, default=None, help="seeded sample (quick runs)")
    parser.add_argument("--device", default="auto", help="training device")
    parser.add_argument("--eval-device", default="cpu", help="device of every tier's predict")
    parser.add_argument("--work-dir", type=Path, default=Path("var/fast_tier"))
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results stem (.json, .md); default bench/results/fast_tier",
    )
    parser.add_argument("--reuse", action="store_true", help="keep finished models, resume others")
    parser.add_argument(
        "--no-student", action="store_true", help="teacher tiers only (quick int8 re-measurements)"
    )
    parser.add_argument(
        "--no-trust",
        action="store_true",
        help="train without the faithfulness check and its retry (faithfulness_sample=0)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny random encoders, 1 epoch, small samples: checks the script",
    )
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.epochs = opts.epochs or 1
        opts.max_length = opts.max_length or 48
        opts.student_layers = min(opts.student_layers, SMOKE_BERT["num_hidden_layers"] - 2)
        opts.folds = min(opts.folds, 1)
        opts.faith_limit = min(opts.faith_limit, 20)
        opts.limit_train = opts.limit_train or 300
        opts.limit_test = opts.limit_test or 100
    if opts.out is None:
        opts.out = (
            opts.work_dir / "fast_tier_smoke"
            if opts.smoke
            else (ROOT / "bench" / "results" / "fast_tier")
        )
    opts.datasets = [d.strip() for d in opts.datasets.split(",") if d.strip()]
    opts.tiers = [t.strip() for t in opts.tiers.split(",") if t.strip()]
    if not set(opts.tiers) <= set(TIERS):
        parser.error(f"--tiers must name some of: {', '.join(TIERS)}")
    if opts.unlabelled and opts.limit_train is None:
        parser.error("--unlabelled needs --limit-train (the texts outside the sample)")
    if not 1 <= opts.folds <= 10:
        parser.error("--folds must be in 1..10")
    if opts.teacher_dir is not None and (
        len(opts.datasets) != 1 or (opts.datasets == ["phrasebank"] and opts.folds != 1)
    ):
        parser.error("--teacher-dir needs one data set (and --folds 1 for phrasebank)")
    return opts


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    opts = parse(argv)
    started, clock = datetime.now(UTC), time.perf_counter()
    tools = onnx_tools()
    if tools[2]:
        log.warning("ONNX tiers not measured: %s", tools[2])
    report: dict[str, Any] = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu_cores": os.cpu_count(),
            "platform": f"{platform.system()} {platform.machine()}",
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu": cpu_features(),
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "onnx": tools[2],
        "datasets": {},
    }
    for name in opts.datasets:
        runs = runs_of(name, opts.folds)
        records = []
        for run, full, test, digest in tqdm(runs, desc=name, unit="run"):
            train, rest = sample_rest(full, opts.limit_train)
            test = sample(test, opts.limit_test)
            records.append(run_one(opts, run, train, test, digest, tools, rest))
        report["datasets"][name] = {"runs": records, "summary": summarise(records)}
    report["seconds"] = round(time.perf_counter() - clock, 1)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = opts.out.with_suffix(".json"), opts.out.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(render(report), encoding="utf-8")
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
