"""Hot reload: the watcher loads a changed model aside, offers it once, refuses a bad one."""

import dataclasses
import os

import pytest

from models.classifier import AttentionTextClassifier
from models.fast.onnx_export import export_onnx
from models.rollout import promote
from models.saving import read_info
from pipeline.metrics import Metrics
from pipeline.stream.model_watch import ModelWatcher, identify
from tests.support.waiting import wait_for


def load(path):
    from models.fast.loading import open_classifier

    return open_classifier(path, "cpu")


@pytest.fixture(scope="module")
def onnx_model(tiny_model, tmp_path_factory):
    """The tiny model exported to ONNX: another version (and runtime) to roll out to."""
    return export_onnx(tiny_model, tmp_path_factory.mktemp("rollout") / "tiny-onnx")


def wait_ready(watcher):
    return wait_for(watcher.ready, 60, "the watcher to offer the new model")


def nothing_new_after_checks(watcher, checks=20):
    """``checks`` calls of ``ready()`` (each starts a check when one is due) offer nothing,
    and neither does the load any of them started, once finished (``close`` waits for it)."""
    for _ in range(checks):
        assert watcher.ready() is None
    watcher.close()
    return watcher.ready() is None


def refused_while_polling(watcher, metrics):
    """Poll ``ready()`` (never offering a model) until a refusal is counted."""

    def refused_yet():
        assert watcher.ready() is None
        return refused(metrics) >= 1

    wait_for(refused_yet, 30, "the new model to be refused")


def refused(metrics):
    return metrics.model_reloads.labels("refused")._value.get()


@pytest.mark.slow
def test_a_promoted_model_is_loaded_aside_and_offered_once(tiny_model, onnx_model, tmp_path):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    metrics = Metrics()
    watcher = ModelWatcher(link, load(link), load, metrics, interval_s=0.0)
    assert watcher.ready() is None  # nothing changed yet
    promote(onnx_model, link, load)
    new = wait_ready(watcher)
    assert new is not None
    assert new.info.version == read_info(onnx_model).version != read_info(tiny_model).version
    # Offered once: the next calls find nothing new.
    assert nothing_new_after_checks(watcher)
    assert refused(metrics) == 0


@pytest.mark.slow
def test_a_broken_model_is_refused_once_and_a_good_one_after_it_is_taken(
    tiny_model, onnx_model, tmp_path
):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    metrics = Metrics()
    watcher = ModelWatcher(link, load(link), load, metrics, interval_s=0.0)
    # A hand-made rollout that bypasses `promote`: weights missing.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "labels.json"):
        (broken / name).write_bytes((tiny_model / name).read_bytes())
    config = (broken / "config.json").read_text().replace(read_info(tiny_model).version, "beef")
    (broken / "config.json").write_text(config)
    link.unlink()
    os.symlink(broken, link)
    refused_while_polling(watcher, metrics)
    assert refused(metrics) == 1
    # Not tried again while the link still names the same broken model.
    assert nothing_new_after_checks(watcher)
    assert refused(metrics) == 1
    link.unlink()
    os.symlink(onnx_model, link)
    new = wait_ready(watcher)
    assert new is not None and new.info.version == read_info(onnx_model).version


class SentimentOnly:
    def __init__(self, inner):
        self._inner = inner

    @property
    def info(self):
        info = self._inner.info
        return dataclasses.replace(info, tasks=tuple(t for t in info.tasks if t.name != "intent"))

    def predict(self, texts, tasks=None):
        return [{"sentiment": p["sentiment"]} for p in self._inner.predict(texts, tasks)]


@pytest.mark.slow
def test_a_model_with_other_tasks_is_refused(tiny_model, onnx_model, tmp_path):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    metrics = Metrics()
    watcher = ModelWatcher(
        link, load(link), lambda path: SentimentOnly(load(path)), metrics, interval_s=0.0
    )
    promote(onnx_model, link, load)
    refused_while_polling(watcher, metrics)
    assert refused(metrics) == 1
    assert watcher.ready() is None


@pytest.mark.slow
def test_the_interval_bounds_checks_and_request_forces_one(tiny_model, onnx_model, tmp_path):
    link = tmp_path / "current"
    promote(tiny_model, link, load)
    watcher = ModelWatcher(link, load(link), load, Metrics(), interval_s=3600.0)
    promote(onnx_model, link, load)
    assert nothing_new_after_checks(watcher)  # the next check is an hour away
    watcher.request()
    assert wait_ready(watcher) is not None


def test_identify_follows_the_link_and_reads_the_version(tiny_model, tmp_path):
    link = tmp_path / "current"
    assert identify(link) is None
    promote(tiny_model, link, load)
    found = identify(link)
    assert found is not None
    assert found.directory == str(tiny_model.resolve())
    assert found.version == read_info(tiny_model).version
    assert isinstance(load(link), AttentionTextClassifier)
