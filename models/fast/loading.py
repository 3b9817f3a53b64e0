"""Open a model directory with the runtime it was saved for: torch or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.classifier import AttentionTextClassifier, TextClassifier
from models.fast.onnx_runtime import ONNX_WEIGHTS, RUNTIME, OnnxTextClassifier
from models.saving import ModelDirError, read_config

RUNTIMES = ("auto", "torch", RUNTIME)


def directory_runtime(directory: Path) -> str:
    """The runtime ``directory`` was saved for: ``onnx`` or ``torch``.

    ``onnx`` when its config says so or it has ``model.onnx``; raises
    :class:`~models.saving.ModelDirError` when it is not a model directory.
    """
    config = read_config(directory)
    if config.get("runtime") == RUNTIME or (directory / ONNX_WEIGHTS).is_file():
        return RUNTIME
    return "torch"


def open_classifier(
    directory: Path, device: str = "auto", runtime: str = "auto", **options: Any
) -> TextClassifier:
    """The classifier of ``directory`` on ``runtime`` (``auto``: the one it was saved for).

    ``options`` go to the classifier: ``top_k``, ``max_texts``, ``max_tokens`` and, for
    ONNX only, ``threads``.  An explicit runtime that does not match the directory raises
    :class:`~models.saving.ModelDirError`.
    """
    if runtime not in RUNTIMES:
        msg = f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}"
        raise ValueError(msg)
    found = directory_runtime(directory)
    if runtime not in ("auto", found):
        msg = f"{directory} is a {found} model directory, not {runtime}" + (
            "; export it with `attnwatch model export-onnx`" if runtime == RUNTIME else ""
        )
        raise ModelDirError(msg)
    if found == RUNTIME:
        return OnnxTextClassifier(directory, device, **options)
    return AttentionTextClassifier(directory, device, **options)
