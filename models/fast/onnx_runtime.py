"""The attention classifier on ONNX Runtime: the same answers as the torch runtime, faster.

An ONNX model directory (written by :func:`models.fast.onnx_export.export_onnx`) holds
``model.onnx`` with inputs ``input_ids``, ``attention_mask``, ``pool_mask`` and outputs
``<task>.logits`` and ``<task>.attention`` (already the mean over the pooling heads).  Only
the forward pass differs from :class:`~models.classifier.AttentionTextClassifier`:
tokenising, bucketing and post-processing are the shared ones of :mod:`models.inference`,
so both runtimes log exactly the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray

from models.classifier import BatchedClassifier
from models.encoding import load_tokenizer, tokenizer_hash
from models.inference import TaskArrays
from models.saving import (
    ModelDirError,
    ModelInfo,
    file_hash,
    read_calibration,
    read_config,
    read_info,
)
from models.weight_files import refuse_pickle_weights

ONNX_WEIGHTS = "model.onnx"
RUNTIME = "onnx"
INPUTS = ("input_ids", "attention_mask", "pool_mask")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def output_names(task: str) -> tuple[str, str]:
    """The graph's output names of one task: its logits and its head-mean attention."""
    return f"{task}.logits", f"{task}.attention"


def providers_for(device: str) -> list[str | tuple[str, dict[str, str]]]:
    """Execution providers for ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    ``auto`` takes CUDA when this onnxruntime build has it; an explicit ``cuda`` without it
    is an error rather than a silent fall-back to the CPU.
    """
    available = ort.get_available_providers()
    if device == "cpu" or (device == "auto" and CUDA not in available):
        return [CPU]
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        if CUDA not in available:
            msg = (
                f"device {device!r} needs onnxruntime with {CUDA} (the onnxruntime-gpu "
                f"package); this one has {available}"
            )
            raise ValueError(msg)
        index = device.partition(":")[2] or "0"
        return [(CUDA, {"device_id": index}), CPU]
    msg = f"device must be auto, cpu, cuda or cuda:N, got {device!r}"
    raise ValueError(msg)


def read_onnx_info(directory: Path) -> ModelInfo:
    """The identity of an ONNX model directory, checked against its ``model.onnx``.

    Raises :class:`~models.saving.ModelDirError` when the directory is not an ONNX export or
    its graph is not the one its version names (a logged version must not lie).
    """
    info = read_info(directory)
    config = read_config(directory)
    if config.get("runtime") != RUNTIME:
        msg = f"{directory} is not an ONNX model directory (config.json has no runtime onnx)"
        raise ModelDirError(msg)
    refuse_pickle_weights(directory)
    graph = directory / ONNX_WEIGHTS
    if not graph.is_file():
        msg = f"{directory}: {ONNX_WEIGHTS} is missing"
        raise ModelDirError(msg)
    if file_hash(graph)[:12] != info.version:
        msg = f"{directory}: {ONNX_WEIGHTS} does not match version {info.version} in config.json"
        raise ModelDirError(msg)
    return info


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """All graph optimisations; ``threads`` intra-op threads (default: torch's count)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # torch's count honours OMP_NUM_THREADS and torch.set_num_threads, so both runtimes
    # take the same share of a machine shared with the rest of the pipeline.
    options.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
    return options


class OnnxTextClassifier(BatchedClassifier):
    """The attention classifier loaded from an ONNX model directory (ONNX Runtime).

    Implements :class:`~models.classifier.TextClassifier`; ``max_texts`` and ``max_tokens``
    bound one forward pass as in the torch runtime.
    """

    def __init__(
        self,
        directory: Path,
        device: str = "cpu",
        top_k: int = 3,
        *,
        max_texts: int = 64,
        max_tokens: int = 4096,
        threads: int | None = None,
    ) -> None:
        info = read_onnx_info(directory)
        tokenizer = load_tokenizer(directory)
        if tokenizer_hash(tokenizer) != info.tokenizer_hash:
            msg = (
                f"{directory}: tokenizer files do not match the tokenizer the model was saved with"
            )
            raise ModelDirError(msg)
        self._session = ort.InferenceSession(
            str(directory / ONNX_WEIGHTS),
            sess_options=session_options(threads),
            providers=providers_for(device),
        )
        super().__init__(tokenizer, info, read_calibration(directory), top_k=top_k,
                         max_texts=max_texts, max_tokens=max_tokens)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on, preferred first."""
        return list(self._session.get_providers())

    def _forward(
        self,
        input_ids: NDArray[np.int64],
        attention_mask: NDArray[np.int64],
        pool_mask: NDArray[np.bool_],
        tasks: Sequence[str],
    ) -> dict[str, TaskArrays]:
        names = [name for task in tasks for name in output_names(task)]
        feeds = dict(zip(INPUTS, (input_ids, attention_mask, pool_mask), strict=True))
        outputs = self._session.run(names, feeds)
        return {
            task: TaskArrays(
                np.asarray(outputs[2 * i], dtype=np.float32),
                np.asarray(outputs[2 * i + 1], dtype=np.float32),
            )
            for i, task in enumerate(tasks)
        }
