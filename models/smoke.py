"""A loaded model's smoke test: it must answer sensibly before it gets live traffic.

Run by ``attnwatch model promote`` before it repoints the model link and by the run loop's
hot reload before it swaps a new model in.  It catches what loading alone does not: weights
that load but produce NaN, a head whose labels do not match its output, attention that is not
a distribution over the words.  It does not judge accuracy (the model card does that).
"""

from __future__ import annotations

import math

from models.classifier import UNKNOWN, Prediction, TextClassifier

#: A chat turn, a headline and an edge case (one word): short, so the test takes milliseconds.
SMOKE_TEXTS = (
    "I was charged twice for my card payment, please refund one of them.",
    "Shares of Northwind Bank rose 4% after quarterly profit beat forecasts.",
    "hello",
)
#: Word weights of one task must sum to 1 within this (float32 softmax, then merged to words).
WEIGHT_TOLERANCE = 1e-3


class SmokeTestError(ValueError):
    """The model loaded but its answers are not usable."""


def smoke_test(classifier: TextClassifier, texts: tuple[str, ...] = SMOKE_TEXTS) -> None:
    """Classify ``texts`` with every task; raise :class:`SmokeTestError` on the first problem."""
    info = classifier.info
    try:
        predictions = classifier.predict(list(texts))
    except Exception as exc:  # noqa: BLE001 - any failure of a new model is a refusal
        msg = f"model {info.name} {info.version}: predict failed: {type(exc).__name__}: {exc}"
        raise SmokeTestError(msg) from exc
    if len(predictions) != len(texts):
        msg = f"model {info.name}: {len(predictions)} predictions for {len(texts)} texts"
        raise SmokeTestError(msg)
    for text, prediction in zip(texts, predictions, strict=True):
        _check(classifier, text, prediction)


def _check(classifier: TextClassifier, text: str, prediction: Prediction) -> None:
    info = classifier.info
    for task in info.tasks:
        answer = prediction.get(task.name)
        where = f"model {info.name} {info.version}, task {task.name}, text {text[:30]!r}"
        if answer is None:
            msg = f"{where}: no prediction"
            raise SmokeTestError(msg)
        if answer.label not in task.labels and answer.label != UNKNOWN:
            msg = f"{where}: label {answer.label!r} is not one of the task's labels"
            raise SmokeTestError(msg)
        if not (math.isfinite(answer.score) and 0.0 <= answer.score <= 1.0):
            msg = f"{where}: score {answer.score} is not a probability"
            raise SmokeTestError(msg)
        total = sum(w.weight for w in answer.words)
        if not answer.words or not math.isclose(total, 1.0, abs_tol=WEIGHT_TOLERANCE):
            msg = f"{where}: word weights sum to {total}, not 1"
            raise SmokeTestError(msg)
