"""Model commands: train, classify, evaluate (explain-eval is in ``attnwatch.cli.explain``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attnwatch.cli.app import app, fail, state
from models.data.examples import Example
from models.training.training_args import TrainingArgs
from pipeline.errors import AttnwatchError

if TYPE_CHECKING:
    from models.training.trainer import TrainResult

FORMAT_HELP = "csv, jsonl, banking77, clinc150 or phrasebank."


def examples_from(path: Path, fmt: str, split: str) -> list[Example]:
    """The labelled examples of ``path`` (a CLI error, exit 2, when they cannot be read)."""
    from models.data.datasets import load_dataset

    try:
        return load_dataset(path, fmt, split)
    except (OSError, ValueError) as exc:
        fail(exc)


def _default(name: str) -> Any:
    """``TrainingArgs``' own default of ``name``: the CLI never repeats a default."""
    return _TRAINING_DEFAULTS[name]


_TRAINING_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainingArgs) if f.default is not MISSING
}


def train_model(
    args: TrainingArgs,
    data: Path | None = None,
    data_format: str = "csv",
    test_data: Path | None = None,
    val_data: Path | None = None,
) -> TrainResult:
    """The one training path of ``train`` and ``demo``: seed data unless ``data`` is given.

    Validation (early stopping, calibration) is ``val_data`` in ``data_format``, else
    CLINC150's official ``val`` split, else a stratified slice of the training data.  Rows
    labelled out of scope (``oos``, ``out_of_scope``, ``unknown``) are never trained on: they
    join validation, where they and any intent the model was not trained on fit the
    ``unknown`` threshold (see ``models.data.out_of_scope``).
    """
    from models.data.loading import seed_examples
    from models.data.out_of_scope import split_out_of_scope, validation_scope
    from models.data.seed import data_hash
    from models.training.splits import restrict, split_validation
    from models.training.trainer import Trainer

    if data is None:
        train_set, test_set, digest = seed_examples()
    else:
        train_set = examples_from(data, data_format, "train")
        test_set = examples_from(test_data, data_format, "test") if test_data else []
        digest = data_hash(data)
    train_set, oos_rows = split_out_of_scope(restrict(train_set, args.tasks))
    validation: list[Example] | None = None
    source = ""
    if val_data is not None:
        validation, source = examples_from(val_data, data_format, "val"), str(val_data)
    elif data is not None and data_format == "clinc150":
        validation, source = examples_from(data, data_format, "val"), f"{data} (CLINC150 val split)"
    elif oos_rows:  # carved here, as the trainer would, so the OOS rows can join it
        if args.val_fraction <= 0:
            msg = (
                f"{data or 'the training data'} has {len(oos_rows)} out-of-scope rows, which "
                "only a validation split can use: give --val-data or a --val-fraction above 0"
            )
            fail(ValueError(msg))
        train_set, validation = split_validation(train_set, args.val_fraction, args.validation_seed)
        source = f"{data or 'seed data'} (stratified {args.val_fraction:g} of training)"
    if validation is not None:
        validation = restrict(validation, args.tasks) + oos_rows
        trained: dict[str, set[str]] = {}
        for example in train_set:
            for task, label in example.labels.items():
                trained.setdefault(task, set()).add(label)
        try:
            scope = validation_scope(validation, trained, source)
        except ValueError as exc:
            fail(exc)
        typer.echo(f"validation {source}: {scope.summary()}")
    return Trainer(args).train(train_set, test_set, digest, validation)


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Option(help="Labelled training data; default: the seed data.")
    ] = None,
    data_format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "csv",
    test_data: Annotated[
        Path | None, typer.Option(help="Held-out data to report on (never used to choose).")
    ] = None,
    val_data: Annotated[
        Path | None,
        typer.Option(
            help="Validation data (same --format) for early stopping and calibration, instead "
            "of a --val-fraction slice of --data (CLINC150: its val split). Intent rows "
            "labelled oos/out_of_scope/unknown, or with an intent not in --data, fit the "
            "unknown-intent threshold."
        ),
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option(help="Train only this task (repeatable): intent, sentiment.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Model directory; default model_dir.")] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Hugging Face id or path; default offline MiniLM.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = _default("epochs"),
    batch_size: Annotated[int, typer.Option(min=1)] = _default("batch_size"),
    learning_rate: Annotated[float, typer.Option(help="Encoder peak learning rate.")] = _default(
        "learning_rate"
    ),
    head_learning_rate: Annotated[
        float, typer.Option(help="Heads' peak learning rate.")
    ] = _default("head_learning_rate"),
    layer_decay: Annotated[float, typer.Option(help="Layer-wise LR decay; 1 = plain.")] = _default(
        "layer_decay"
    ),
    label_smoothing: Annotated[float, typer.Option()] = _default("label_smoothing"),
    attention_entropy: Annotated[
        float, typer.Option(help="Attention-entropy penalty (peakier, more faithful weights).")
    ] = _default("attention_entropy"),
    num_heads: Annotated[
        int, typer.Option(min=1, help="Attention-pooling heads per task.")
    ] = _default("num_heads"),
    max_length: Annotated[int, typer.Option(min=8, max=512)] = _default("max_length"),
    val_fraction: Annotated[float, typer.Option(help="Stratified validation share.")] = _default(
        "val_fraction"
    ),
    patience: Annotated[int, typer.Option(help="Early-stopping patience in epochs.")] = _default(
        "patience"
    ),
    average_last: Annotated[
        int, typer.Option(min=0, help="Average the last N epochs' weights if validation agrees.")
    ] = _default("average_last"),
    length_group: Annotated[
        int, typer.Option(min=1, help="Batches sorted by length in groups of N (1 = off).")
    ] = _default("length_group"),
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="DIR", help="Saved model to distil from (repeat for an ensemble of teachers)."
        ),
    ] = None,
    distill_weight: Annotated[
        float, typer.Option(help="Share of the loss on the teachers' soft labels.")
    ] = _default("distill_weight"),
    distill_temperature: Annotated[
        float, typer.Option(help="Distillation temperature.")
    ] = _default("distill_temperature"),
    encoder_layers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Keep only the bottom N of the encoder's layers (a smaller, faster student).",
        ),
    ] = _default("encoder_layers"),
    augment: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --teacher: also distil on N perturbed copies of each training text "
            "(words dropped and swapped), labelled by the teachers only.",
        ),
    ] = _default("augment_copies"),
    seed: Annotated[int, typer.Option(help="Seed of initialisation and batch order.")] = _default(
        "seed"
    ),
    split_seed: Annotated[
        int | None, typer.Option(help="Seed of the validation split (default: --seed).")
    ] = _default("split_seed"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = _default("resume"),
    faithfulness_sample: Annotated[
        int,
        typer.Option(
            min=0, help="Validation texts per task to measure attention faithfulness on (0 = skip)."
        ),
    ] = _default("faithfulness_sample"),
    faithfulness_retry_entropy: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="If a task's attention fails the faithfulness bar, train again with this "
            "attention-entropy penalty (0 = never).",
        ),
    ] = _default("faithfulness_retry_entropy"),
    name: Annotated[
        str, typer.Option(help="Model name recorded with every prediction.")
    ] = _default("name"),
) -> None:
    """Train the attention classifier and save it as a model directory."""
    settings = state.settings
    try:
        args = TrainingArgs(
            output_dir=output or settings.model.dir,
            encoder=encoder or settings.model.encoder,
            name=name,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            head_learning_rate=head_learning_rate,
            layer_decay=layer_decay,
            label_smoothing=label_smoothing,
            attention_entropy=attention_entropy,
            num_heads=num_heads,
            max_length=max_length,
            val_fraction=val_fraction,
            patience=patience,
            average_last=average_last,
            length_group=length_group,
            teachers=tuple(teacher or ()),
            distill_weight=distill_weight,
            distill_temperature=distill_temperature,
            encoder_layers=encoder_layers,
            augment_copies=augment,
            seed=seed,
            split_seed=split_seed,
            tasks=tuple(task) if task else None,
            resume=resume,
            faithfulness_sample=faithfulness_sample,
            faithfulness_retry_entropy=faithfulness_retry_entropy,
            device=settings.model.device,
        )
        result = train_model(args, data, data_format, test_data, val_data)
    except ValueError as exc:
        fail(exc)
    typer.echo(
        f"saved {result.info.name}@{result.info.version} to {result.directory} "
        f"in {result.seconds:.0f} s"
    )
    if result.calibration is not None:
        typer.echo(f"  unknown-intent threshold: {result.calibration.describe()}")
    for task_name, groups in result.metrics.items():
        for group, m in groups.items():
            typer.echo(
                f"  {task_name:<9} {group:<10} accuracy {m.accuracy:.4f}  macro-F1 "
                f"{m.macro_f1:.4f}  (n={m.n})"
            )
    from models.training.trust import ratio_text

    for task_name, trust in result.trust.items():
        typer.echo(
            f"  {task_name:<9} attention comprehensiveness {ratio_text(trust.vs_random)} "
            f"random, {ratio_text(trust.vs_gradient)} gradient x input: {trust.verdict}"
        )
    for warning in result.warnings:
        typer.secho(f"WARNING: {warning}", fg=typer.colors.RED, bold=True, err=True)


@app.command()
def classify(
    texts: Annotated[list[str], typer.Argument(help="Text(s) to classify.")],
    top_words: Annotated[int, typer.Option(min=1, help="Words shown per task.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Classify text with the saved model and show the words its attention chose."""
    from attnwatch.service import load_classifier

    try:
        classifier = load_classifier(state.settings)
    except AttnwatchError as exc:
        fail(exc)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        if as_json:
            payload: dict[str, object] = {"text": text}
            for task_name, p in prediction.items():
                payload[task_name] = {
                    "label": p.label,
                    "score": round(p.score, 4),
                    "top": [{"label": lb, "score": round(s, 4)} for lb, s in p.top],
                    "attention": [
                        {
                            "word": w.word,
                            "weight": round(w.weight, 4),
                            "start": w.start,
                            "end": w.end,
                        }
                        for w in p.words
                    ],
                    "attention_faithful": classifier.info.attention_faithful.get(task_name),
                }
            payload["model"] = f"{classifier.info.name}@{classifier.info.version}"
            typer.echo(json.dumps(payload))
            continue
        typer.echo(text)
        for task_name, p in prediction.items():
            words = sorted(p.words, key=lambda w: -w.weight)[:top_words]
            shown = ", ".join(f"{w.word} {w.weight:.2f}" for w in words)
            flag = (
                "  (attention not faithful for this task)"
                if classifier.info.attention_faithful.get(task_name) is False
                else ""
            )
            typer.echo(f"  {task_name:<9} {p.label} ({p.score:.2f})   words: {shown}{flag}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Saved model directory.")],
    data: Annotated[Path, typer.Option(help="Labelled data to evaluate on.")],
    data_format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "csv",
    split: Annotated[str, typer.Option(help="CLINC150 split: val or test.")] = "test",
    output: Annotated[
        Path | None, typer.Option(help="Report folder; default MODEL/eval-<data name>.")
    ] = None,
) -> None:
    """Accuracy, macro-F1, per-class P/R, confusion (PNG + CSV), ECE and OOS recall."""
    from models.evaluation.assess import assess
    from models.saving import ModelDirError

    examples = examples_from(data, data_format, split)
    folder = output or model / f"eval-{data.stem}"
    try:
        reports = assess(model, examples, folder, device=state.settings.model.device)
    except (ModelDirError, ValueError) as exc:
        fail(exc)
    for task_name, report in reports.items():
        line = f"{task_name:<9} accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}"
        if report.ece is not None:
            line += f"  ECE {report.ece:.4f}"
        if report.oos_recall is not None:
            line += f"  OOS recall {report.oos_recall:.4f}"
        typer.echo(f"{line}  (n={report.n})")
    typer.echo(f"report: {folder / 'report.md'}")
