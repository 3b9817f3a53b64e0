"""The stratified folds of bench/sentiment_cv.py (bench is scripts, not a package)."""

import importlib.util
import random
from collections import Counter
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "sentiment_cv.py"
_spec = importlib.util.spec_from_file_location("sentiment_cv", _SCRIPT)
assert _spec is not None and _spec.loader is not None
sentiment_cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sentiment_cv)
folds = sentiment_cv.folds


def _labels(seed):
    # PhraseBank-like imbalance, shuffled so that classes are interleaved.
    labels = ["neutral"] * 577 + ["positive"] * 272 + ["negative"] * 121 + ["rare"] * 13
    random.Random(seed).shuffle(labels)
    return labels


@pytest.mark.parametrize(("k", "seed"), [(10, 0), (10, 1), (5, 7), (3, 2)])
def test_every_index_held_out_once_and_folds_keep_class_shares(k, seed):
    labels = _labels(seed)
    assignment = folds(labels, k, seed)
    assert len(assignment) == k
    held = [i for fold in assignment for i in fold]
    assert sorted(held) == list(range(len(labels)))
    total = Counter(labels)
    for fold in assignment:
        counts = Counter(labels[i] for i in fold)
        for label, n in total.items():
            expected = len(fold) * n / len(labels)  # the overall share, in items of this fold
            assert abs(counts[label] - expected) <= 1, (label, counts[label], expected)
            assert abs(counts[label] - n / k) < 1, (label, counts[label], n / k)


def test_folds_are_deterministic_and_depend_on_the_seed():
    labels = _labels(0)
    assert folds(labels, 10, 0) == folds(labels, 10, 0)
    assert folds(labels, 10, 0) != folds(labels, 10, 1)


def test_more_folds_than_any_class_has_items_is_refused():
    with pytest.raises(ValueError, match="n_splits"):
        folds(["a", "a", "b", "b"], 3, 0)
