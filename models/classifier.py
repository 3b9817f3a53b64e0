"""Inference: texts in, labels with scores and word-level attention out.

:class:`TextClassifier` is the interface the pipeline depends on; a quantised
or distilled model implements the same protocol without touching the run loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import PreTrainedTokenizerBase

from models.inference import TaskArrays, TaskRule, run_batched
from models.saving import ModelInfo, load_model
from models.torch_thread import on_torch_thread
from models.words import WordWeight

INTENT = "intent"
#: The intent label given when calibrated confidence is below the model's threshold.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TaskPrediction:
    """One task's answer for one text.

    ``words`` carries the head's attention merged to display words (words split from
    their punctuation, each with its character span in the text: see
    :mod:`models.words`); with several pooling heads it is the mean of the heads'
    weights.  For intent, scores are temperature-calibrated and ``label`` is ``unknown``
    when the top score is below the model's threshold (``top`` still lists the best
    known intents).
    """

    label: str
    score: float
    top: tuple[tuple[str, float], ...]
    words: tuple[WordWeight, ...]


Prediction = dict[str, TaskPrediction]


class TextClassifier(Protocol):
    """What the pipeline needs from a classifier."""

    @property
    def info(self) -> ModelInfo:
        """Name, version and tokenizer hash of the model."""

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        """Classify ``texts`` for ``tasks`` (all tasks by default)."""


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class BatchedClassifier:
    """What every runtime shares: identity, decision rules, and batched :meth:`predict`.

    A runtime subclass loads its network and implements :meth:`_forward` only (padded ids
    in, each task's logits and attention out); tokenising, bucketing and the logged words
    are :mod:`models.inference`'s, so runtimes cannot drift apart in what they log.
    ``max_texts`` and ``max_tokens`` bound one forward pass.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        info: ModelInfo,
        calibration: Mapping[str, Any] | None,
        *,
        top_k: int,
        max_texts: int,
        max_tokens: int,
    ) -> None:
        self._tokenizer = tokenizer
        self._info = info
        self._rules = task_rules(info, calibration)
        self._top_k = top_k
        self._max_texts = max_texts
        self._max_tokens = max_tokens

    @property
    def info(self) -> ModelInfo:
        """Name, version and tokenizer hash of the loaded model."""
        return self._info

    @property
    def tasks(self) -> list[str]:
        """Task names, e.g. ``["intent", "sentiment"]``."""
        return [t.name for t in self._info.tasks]

    def _forward(
        self,
        input_ids: NDArray[np.int64],
        attention_mask: NDArray[np.int64],
        pool_mask: NDArray[np.bool_],
        tasks: Sequence[str],
    ) -> Mapping[str, TaskArrays]:
        raise NotImplementedError

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        """Classify a batch; every task's word weights of a text sum to one."""
        if not texts:
            return []
        wanted = list(tasks) if tasks is not None else self.tasks
        unknown = [t for t in wanted if t not in self._rules]
        if unknown:
            msg = f"unknown task(s) {unknown}; the model has {list(self._rules)}"
            raise KeyError(msg)
        answers = run_batched(
            self._forward,
            self._tokenizer,
            texts,
            {name: self._rules[name] for name in wanted},
            max_length=self._info.max_length,
            top_k=self._top_k,
            max_texts=self._max_texts,
            max_tokens=self._max_tokens,
        )
        return [
            {name: TaskPrediction(a.label, a.score, a.top, a.words) for name, a in row.items()}
            for row in answers
        ]


class AttentionTextClassifier(BatchedClassifier):
    """The attention classifier loaded from a saved model directory (PyTorch runtime)."""

    def __init__(
        self,
        directory: Path,
        device: str = "auto",
        top_k: int = 3,
        *,
        max_texts: int = 64,
        max_tokens: int = 4096,
    ) -> None:
        self._device = resolve_device(device)
        # Loading, smoke tests and forwards all run on one thread: see models.torch_thread.
        loaded = on_torch_thread(lambda: load_model(directory, self._device))
        self._model = loaded.model
        super().__init__(
            loaded.tokenizer,
            loaded.info,
            loaded.calibration,
            top_k=top_k,
            max_texts=max_texts,
            max_tokens=max_tokens,
        )

    def _forward(
        self,
        input_ids: NDArray[np.int64],
        attention_mask: NDArray[np.int64],
        pool_mask: NDArray[np.bool_],
        tasks: Sequence[str],
    ) -> dict[str, TaskArrays]:
        return on_torch_thread(lambda: self._compute(input_ids, attention_mask, pool_mask, tasks))

    @torch.inference_mode()
    def _compute(
        self,
        input_ids: NDArray[np.int64],
        attention_mask: NDArray[np.int64],
        pool_mask: NDArray[np.bool_],
        tasks: Sequence[str],
    ) -> dict[str, TaskArrays]:
        outputs = self._model(
            torch.from_numpy(input_ids).to(self._device),
            torch.from_numpy(attention_mask).to(self._device),
            torch.from_numpy(pool_mask).to(self._device),
            tasks,
        )
        return {
            name: TaskArrays(
                out.logits.float().cpu().numpy(),
                out.attention.float().mean(dim=1).cpu().numpy(),
            )
            for name, out in outputs.items()
        }


def task_rules(info: ModelInfo, calibration: Mapping[str, Any] | None) -> dict[str, TaskRule]:
    """Each task's labels and decision rule (intent: calibrated temperature and threshold)."""
    found = calibration or {}
    threshold = found.get("unknown_threshold")
    rules = {}
    for spec in info.tasks:
        if spec.name == INTENT:
            rules[spec.name] = TaskRule(
                spec.labels,
                temperature=float(found.get("temperature", 1.0)),
                unknown_threshold=None if threshold is None else float(threshold),
                unknown_label=UNKNOWN,
            )
        else:
            rules[spec.name] = TaskRule(spec.labels)
    return rules
