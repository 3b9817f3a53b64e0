"""Model rollout: promote repoints the link only for a model that loads and answers sensibly."""

import dataclasses
import math
import os

import pytest

from models.classifier import AttentionTextClassifier
from models.rollout import PREVIOUS_SUFFIX, promote, rollback
from models.saving import ModelDirError, read_info
from models.smoke import SmokeTestError, smoke_test


def load(path):
    return AttentionTextClassifier(path, "cpu")


@pytest.fixture
def second_model(tiny_model, tmp_path):
    """A copy of the tiny model under another directory (the same weights, another path)."""
    import shutil

    return shutil.copytree(tiny_model, tmp_path / "v2")


@pytest.mark.slow
def test_promote_points_the_link_and_keeps_the_previous_target(tiny_model, second_model, tmp_path):
    link = tmp_path / "models" / "current"
    first = promote(tiny_model, link, load)
    assert first.previous is None
    assert os.path.realpath(link) == str(tiny_model.resolve())
    assert first.info.version == read_info(tiny_model).version

    second = promote(second_model, link, load)
    assert second.previous == tiny_model.resolve()
    assert os.path.realpath(link) == str(second_model.resolve())
    previous = link.with_name(link.name + PREVIOUS_SUFFIX)
    assert os.path.realpath(previous) == str(tiny_model.resolve())
    # No temporary link left behind by the rename.
    assert sorted(p.name for p in link.parent.iterdir()) == ["current", "current.previous"]

    back = rollback(link, load)
    assert os.path.realpath(link) == str(tiny_model.resolve())
    assert back.previous == second_model.resolve()


def test_a_broken_model_is_refused_and_the_link_left_alone(tiny_model, tmp_path):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(ModelDirError):
        promote(broken, link, load)
    assert os.path.realpath(link) == str(tiny_model.resolve())
    with pytest.raises(ModelDirError, match="not a directory"):
        promote(tmp_path / "missing", link, load)


def test_a_real_directory_is_not_replaced(tiny_model, second_model):
    with pytest.raises(ModelDirError, match="is a directory, not a link"):
        promote(second_model, tiny_model, load)
    assert (tiny_model / "config.json").is_file()


def test_rollback_without_history_is_refused(tiny_model, tmp_path):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    with pytest.raises(ModelDirError, match="no previous model"):
        rollback(link, load)


class NanScores:
    """A real classifier whose scores come out NaN (weights that load but compute garbage)."""

    def __init__(self, inner):
        self._inner = inner

    @property
    def info(self):
        return self._inner.info

    def predict(self, texts, tasks=None):
        out = self._inner.predict(texts, tasks)
        return [{k: dataclasses.replace(v, score=math.nan) for k, v in p.items()} for p in out]


class NoWords(NanScores):
    def predict(self, texts, tasks=None):
        out = self._inner.predict(texts, tasks)
        return [{k: dataclasses.replace(v, words=()) for k, v in p.items()} for p in out]


@pytest.mark.slow
def test_smoke_test_passes_a_real_model_and_refuses_garbage(tiny_model, tmp_path):
    model = load(tiny_model)
    smoke_test(model)
    with pytest.raises(SmokeTestError, match="not a probability"):
        smoke_test(NanScores(model))
    with pytest.raises(SmokeTestError, match="word weights"):
        smoke_test(NoWords(model))
    link = tmp_path / "current"
    with pytest.raises(SmokeTestError):
        promote(tiny_model, link, lambda path: NanScores(load(path)))
    assert not link.exists() and not link.is_symlink()
