"""The ``attnwatch model`` command group: faster runtimes of a saved model (``export-onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import fail

model_app = typer.Typer(
    help="Faster runtimes of a saved model: `attnwatch model export-onnx MODEL_DIR --out DIR`.",
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
            "labels may differ slightly from torch's (the agreement is on the card).",
        ),
    ] = False,
    opset: Annotated[int, typer.Option(min=14, help="ONNX opset of the graph.")] = 17,
) -> None:
    """Export a saved model to ONNX Runtime, verified against torch before it is written.

    The output is a model directory of its own (model.onnx, tokenizer, labels, calibration,
    card, metrics); its version is model.onnx's hash and its name ends in -onnx or
    -onnx-int8, so every logged prediction names the weights that produced it.
    """
    from models.fast.onnx_export import export_onnx
    from models.saving import read_info

    typer.echo(f"exporting {model_dir} to ONNX ({'int8' if int8 else 'fp32'}) ...")
    try:
        path = export_onnx(model_dir, out, int8=int8, opset=opset)
        info = read_info(path)
    except (OSError, ValueError) as exc:
        fail(exc)
    typer.echo(f"saved {info.name}@{info.version} to {path}")
