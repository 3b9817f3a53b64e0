"""Inference: texts in, labels with scores and word-level attention out.

:class:`TextClassifier` is the interface the pipeline depends on; a quantised
or distilled model implements the same protocol without touching the run loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from models.encoding import encode
from models.saving import ModelInfo, load_model
from models.words import WordWeight, merge_word_pieces

INTENT = "intent"
#: The intent label given when calibrated confidence is below the model's threshold.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TaskPrediction:
    """One task's answer for one text.

    ``words`` carries the head's attention merged to words; with several
    pooling heads it is the mean of the heads' weights.  For intent, scores are
    temperature-calibrated and ``label`` is ``unknown`` when the top score is
    below the model's threshold (``top`` still lists the best known intents).
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


class AttentionTextClassifier:
    """The attention classifier loaded from a saved model directory."""

    def __init__(self, directory: Path, device: str = "auto", top_k: int = 3) -> None:
        self._device = resolve_device(device)
        loaded = load_model(directory, self._device)
        self._model = loaded.model
        self._tokenizer = loaded.tokenizer
        self._info = loaded.info
        self._top_k = top_k
        calibration = loaded.calibration or {}
        self._temperature = float(calibration.get("temperature", 1.0))
        threshold = calibration.get("unknown_threshold")
        self._unknown_threshold = None if threshold is None else float(threshold)

    @property
    def info(self) -> ModelInfo:
        """Name, version and tokenizer hash of the loaded model."""
        return self._info

    @property
    def tasks(self) -> list[str]:
        """Task names, e.g. ``["intent", "sentiment"]``."""
        return [t.name for t in self._info.tasks]

    @torch.inference_mode()
    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        """Classify a batch; every task's word weights of a text sum to one."""
        if not texts:
            return []
        wanted = list(tasks) if tasks is not None else self.tasks
        batch = encode(self._tokenizer, texts, self._info.max_length).to(self._device)
        outputs = self._model(batch.input_ids, batch.attention_mask, batch.pool_mask, wanted)
        pool_mask = batch.pool_mask.cpu()
        results: list[Prediction] = [{} for _ in texts]
        for name in wanted:
            labels = self._model.tasks[name].labels
            logits = outputs[name].logits.float()
            if name == INTENT:
                logits = logits / self._temperature
            probs = torch.softmax(logits, dim=-1).cpu()
            alpha = outputs[name].attention.float().mean(dim=1).cpu()
            k = min(self._top_k, len(labels))
            top_p, top_i = probs.topk(k, dim=-1)
            for row, text in enumerate(texts):
                keep = pool_mask[row].nonzero().flatten().tolist()
                spans = [batch.offsets[row][i] for i in keep]
                words = _words(text, spans, alpha[row, keep].tolist())
                top = tuple(
                    (labels[int(i)], float(p))
                    for p, i in zip(top_p[row].tolist(), top_i[row].tolist(), strict=True)
                )
                label = top[0][0]
                if (
                    name == INTENT
                    and self._unknown_threshold is not None
                    and top[0][1] < self._unknown_threshold
                ):
                    label = UNKNOWN
                results[row][name] = TaskPrediction(label, top[0][1], top, words)
        return results


def _words(text: str, spans: list[tuple[int, int]], weights: list[float]) -> tuple[WordWeight, ...]:
    pairs = [(s, w) for s, w in zip(spans, weights, strict=True) if s[1] > s[0]]
    if not pairs:
        return ()
    merged = merge_word_pieces(text, [s for s, _ in pairs], [w for _, w in pairs])
    total = sum(w.weight for w in merged) or 1.0
    return tuple(WordWeight(w.word, w.weight / total) for w in merged)
