"""A zero-cost classifier: what the run loop costs on its own, without the model.

It answers instantly with the first label of each task and the text's words weighted
equally (so enriched records have the shape and about the size of real ones).  The run loop
with it measures everything but the forward pass: consuming, decoding, redaction, sentence
splitting, enrichment, serialisation, the store, the output topic, commits.  On a machine
whose cores the forward pass already fills, the two costs add up, which bounds what the run
loop can reach against the limit: ``1 / (1 + limit / null)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.classifier import Prediction, TaskPrediction
from models.saving import ModelInfo
from models.words import WordWeight, word_spans


class NullClassifier:
    """Implements ``TextClassifier`` with no model at all."""

    def __init__(self, info: ModelInfo) -> None:
        self._info = info

    @property
    def info(self) -> ModelInfo:
        """The real model's identity (the run loop checks its tasks)."""
        return self._info

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        """First label, score 1, uniform word weights."""
        wanted = list(tasks) if tasks is not None else [t.name for t in self._info.tasks]
        labels = {t.name: t.labels for t in self._info.tasks}
        out: list[Prediction] = []
        for text in texts:
            spans = word_spans(text)
            weight = 1.0 / len(spans) if spans else 0.0
            shared = tuple(WordWeight(text[s:e], weight, s, e) for s, e in spans)
            out.append(
                {
                    name: TaskPrediction(labels[name][0], 1.0, ((labels[name][0], 1.0),), shared)
                    for name in wanted
                }
            )
        return out
