"""Training and inference on a tiny randomly initialised BERT (seconds on a CPU)."""

import json
from collections import Counter

import pytest
import torch

from models.classifier import UNKNOWN, AttentionTextClassifier
from models.data.examples import Example
from models.data.loading import seed_examples
from models.evaluation.metrics import macro_f1
from models.saving import ModelDirError, load_model, read_info
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs
from tests.conftest import TINY_BERT, tiny_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train, test, digest = seed_examples()
    directory = tmp_path_factory.mktemp("m") / "model"
    result = Trainer(tiny_args(directory, name="unit")).train(train[::2], test, digest)
    return result, test


def test_loss_falls_and_accuracy_beats_the_majority_class(trained):
    result, _ = trained
    first = sum(result.losses[:5]) / 5
    last = sum(result.losses[-5:]) / 5
    assert last < first * 0.8
    for task, groups in result.metrics.items():
        for group, metrics in groups.items():
            assert metrics.accuracy > metrics.majority_baseline, (task, group, metrics)


def test_save_and_load_give_identical_predictions(trained):
    result, test = trained
    texts = [e.text for e in test[:16]]
    first = AttentionTextClassifier(result.directory, "cpu").predict(texts)
    second = AttentionTextClassifier(result.directory, "cpu").predict(texts)
    assert first == second
    loaded = load_model(result.directory)
    assert sum(p.numel() for p in loaded.model.parameters()) > 0
    info = read_info(result.directory)
    assert info.version == result.info.version and len(info.version) == 12
    card = (result.directory / "README.md").read_text()
    assert "Held-out test metrics" in card and info.encoder_source in card
    metrics = json.loads((result.directory / "metrics.json").read_text())
    assert metrics["n_test"] == len(test)


def test_word_weights_sum_to_one_and_cover_the_words(trained):
    result, _ = trained
    classifier = AttentionTextClassifier(result.directory, "cpu")
    texts = [
        "My card was DECLINED at the pharmacy!!",
        "ok",
        "Northwind (NWB) cuts guidance; shares slide 12%",
    ]
    threshold = json.loads((result.directory / "calibration.json").read_text())["unknown_threshold"]
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        assert set(prediction) == {"intent", "sentiment"}
        for name, task in prediction.items():
            assert sum(w.weight for w in task.words) == pytest.approx(1.0, abs=1e-5)
            assert [w.word for w in task.words] == text.split()
            best, best_score = task.top[0]
            assert best_score == task.score
            if task.label == UNKNOWN:  # below the calibrated threshold: top keeps the best known
                assert name == "intent" and task.score < threshold
            else:
                assert task.label == best
            assert [s for _, s in task.top] == sorted((s for _, s in task.top), reverse=True)


def test_truncated_text_keeps_weights_on_the_words_seen(trained):
    result, _ = trained
    classifier = AttentionTextClassifier(result.directory, "cpu")
    text = " ".join(f"word{i}" for i in range(200))
    prediction = classifier.predict([text], ["sentiment"])[0]["sentiment"]
    assert 0 < len(prediction.words) < 200
    assert sum(w.weight for w in prediction.words) == pytest.approx(1.0, abs=1e-5)


def test_tampered_tokenizer_is_detected(trained, tmp_path):
    result, _ = trained
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(result.directory, copy)
    vocab = json.loads((copy / "tokenizer.json").read_text())
    vocab["model"]["vocab"]["attnwatchextra"] = len(vocab["model"]["vocab"])
    (copy / "tokenizer.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelDirError, match="tokenizer"):
        load_model(copy)
    with pytest.raises(ModelDirError, match="config.json"):
        load_model(tmp_path)


def test_bad_training_arguments_fail_fast(tmp_path):
    for bad in (
        {"epochs": 0},
        {"learning_rate": 0},
        {"warmup_ratio": 1.0},
        {"max_length": 4},
        {"dropout": 1.5},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainingArgs(output_dir=tmp_path, **bad)


def test_macro_f1_by_hand():
    gold = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "b"]
    score, per_class = macro_f1(gold, pred)
    # a: tp1 fp0 fn1 -> 2/3; b: tp1 fp2 fn0 -> 2/4; c: tp0 -> 0
    assert per_class == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 0.0})
    assert score == pytest.approx((2 / 3 + 0.5) / 3)


def test_single_task_training_on_user_labels(tmp_path):
    rows = [Example(f"refund {i} please", {"intent": "refund"}) for i in range(8)]
    rows += [Example(f"card {i} blocked", {"intent": "card"}) for i in range(8)]
    torch.manual_seed(0)
    result = Trainer(
        TrainingArgs(
            output_dir=tmp_path / "m",
            random_encoder_config=TINY_BERT,
            epochs=2,
            batch_size=4,
            device="cpu",
            progress=False,
        )
    ).train(rows, rows[:4], "hash")
    assert [t.name for t in result.info.tasks] == ["intent"]
    assert Counter(t.labels for t in result.info.tasks)[("card", "refund")] == 1
