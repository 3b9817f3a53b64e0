"""The ``attnwatch model`` command group: faster runtimes (``export-onnx``) and rollout.

``promote`` and ``rollback`` repoint the serving model link (``model_dir``) that running
``attnwatch run`` processes watch; see :mod:`models.rollout` and
:mod:`pipeline.stream.model_watch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from attnwatch.cli.app import fail, state
from attnwatch.cli.model import FORMAT_HELP, examples_from
from models.fast.int8_settings import MIN_AGREEMENT

if TYPE_CHECKING:
    from models.classifier import TextClassifier

model_app = typer.Typer(
    help="Faster runtimes and rollout of saved models: `export-onnx`, `promote`, `rollback`.",
    no_args_is_help=True,
)


@model_app.command("export-onnx")
def export_onnx_command(
    model_dir: Annotated[
        Path, typer.Argument(help="Saved (torch) model directory, e.g. var/models/default.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="ONNX model directory to write: new, empty, or an earlier export (replaced).",
        ),
    ],
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Quantise the weights to int8 (dynamic quantisation, about 4x smaller); "
            "labels may differ slightly from torch's: their agreement on the validation texts "
            "is measured on this CPU and written on the card and in metrics.json.",
        ),
    ] = False,
    opset: Annotated[int, typer.Option(min=14, help="ONNX opset of the graph.")] = 17,
    min_agreement: Annotated[
        float,
        typer.Option(
            "--min-agreement",
            min=0.0,
            help="With --int8: refuse (exit 2, nothing written) unless every task's int8 label "
            "agrees with torch's on at least this share of the validation texts on this CPU.",
        ),
    ] = MIN_AGREEMENT,
    validation_data: Annotated[
        Path | None,
        typer.Option(
            "--validation-data",
            help="With --int8: labelled data whose texts measure the agreement: texts like the "
            "ones the model will serve, e.g. its validation split (default: the 1,402 seed "
            "chats and headlines, right for a model trained on the seed data).",
        ),
    ] = None,
    data_format: Annotated[
        str, typer.Option("--data-format", help=f"Format of --validation-data: {FORMAT_HELP}")
    ] = "csv",
    split: Annotated[
        str,
        typer.Option("--split", help="Split of --validation-data (for data sets with several)."),
    ] = "test",
    fuse: Annotated[
        bool,
        typer.Option(
            "--fuse",
            help="Fuse attention, layer norms and GELU into ONNX Runtime's BERT kernels "
            "(Attention, QAttention with --int8); verified against torch like the plain graph. "
            "Measure before serving it: on the 2-core VNNI CPU of bench/RESULTS.md it was slower "
            "than the plain graph.",
        ),
    ] = False,
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            min=8,
            help="Truncate texts at this many tokens when serving (at most the model's own; "
            "default: the model's).",
        ),
    ] = None,
) -> None:
    """Export a saved model to ONNX Runtime, verified against torch before it is written.

    The output is a model directory of its own (model.onnx, tokenizer, labels, calibration,
    card, metrics); its version is model.onnx's hash and its name ends in -onnx or
    -onnx-int8, so every logged prediction names the weights that produced it.
    """
    from models.fast.onnx_export import export_onnx
    from models.saving import read_info

    texts = None
    if validation_data is not None:
        texts = [e.text for e in examples_from(validation_data, data_format, split)]
    kind = ("fused " if fuse else "") + ("int8" if int8 else "fp32")
    typer.echo(f"exporting {model_dir} to ONNX ({kind}) ...")
    try:
        path = export_onnx(
            model_dir,
            out,
            int8=int8,
            opset=opset,
            min_agreement=min_agreement,
            validation=texts,
            validation_name=str(validation_data),
            fuse=fuse,
            max_length=max_length,
        )
        info = read_info(path)
    except (OSError, ValueError) as exc:
        fail(exc)
    typer.echo(f"saved {info.name}@{info.version} to {path}")


LinkOption = Annotated[
    Path | None,
    typer.Option(
        "--link",
        help="The serving model link to repoint (default: the model_dir setting, which "
        "`attnwatch run` watches).",
    ),
]


@model_app.command("promote")
def promote_command(
    model_dir: Annotated[Path, typer.Argument(help="Model directory to serve from now on.")],
    link: LinkOption = None,
) -> None:
    """Serve MODEL_DIR: load and smoke-test it, then repoint the model link atomically.

    Running `attnwatch run` processes swap to it between batches within
    model_watch_interval_s (or at once on SIGHUP); a model they cannot load is refused
    there too and the old one keeps running.  The replaced target is kept for `rollback`.
    """
    _switch(model_dir, link)


@model_app.command("rollback")
def rollback_command(link: LinkOption = None) -> None:
    """Serve the model the link pointed at before the last `promote` (tested the same way)."""
    _switch(None, link)


def _switch(model_dir: Path | None, link: Path | None) -> None:
    """Promote ``model_dir`` (None: roll back) on ``link`` (default ``model_dir`` setting)."""
    from attnwatch.service import load_classifier
    from models.rollout import promote, rollback
    from models.saving import ModelDirError
    from models.smoke import SmokeTestError
    from pipeline.errors import AttnwatchError

    settings = state.settings
    where = link or settings.model.dir

    def load(path: Path) -> TextClassifier:
        return load_classifier(settings, path)

    try:
        done = rollback(where, load) if model_dir is None else promote(model_dir, where, load)
    except (ModelDirError, SmokeTestError, AttnwatchError, OSError) as exc:
        fail(exc)
    before = f" (was {done.previous})" if done.previous else ""
    typer.echo(f"{done.link} -> {done.target}: {done.info.name}@{done.info.version}{before}")
    typer.echo(
        "running loops swap to it between batches within model_watch_interval_s "
        f"({settings.model.watch_interval_s:g} s) or at once on SIGHUP"
    )
    unfaithful = [t for t, ok in done.info.attention_faithful.items() if ok is False]
    if unfaithful:
        typer.secho(
            f"WARNING: training found this model's attention not faithful for "
            f"{', '.join(unfaithful)}: its highlighted words do not explain those labels "
            "(events say attention_faithful=false; see the model card)",
            fg=typer.colors.RED,
            err=True,
        )
