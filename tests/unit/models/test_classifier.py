"""Training and inference on a tiny randomly initialised BERT (seconds on a CPU)."""

import json
from collections import Counter

import pytest
import torch

from models.classifier import UNKNOWN, AttentionTextClassifier
from models.data.examples import Example
from models.data.loading import seed_examples
from models.evaluation.metrics import macro_f1, predict_logits
from models.saving import ModelDirError, load_model, read_info
from models.training import trainer as trainer_module
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs
from models.words import split_words, word_spans
from tests.support.model import TINY_BERT, tiny_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The training result, the test examples, and the logits of ``test[:16]`` per task that
    the trained model gave in memory just before it was saved."""
    train, test, digest = seed_examples()
    directory = tmp_path_factory.mktemp("m") / "model"
    texts = [e.text for e in test[:16]]
    in_memory = {}
    real_save = trainer_module.save_model

    def save_after_scoring(model, tokenizer, directory, **kwargs):
        for task in model.tasks:
            in_memory[task] = predict_logits(model, tokenizer, texts, task, kwargs["max_length"])
        return real_save(model, tokenizer, directory, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_module, "save_model", save_after_scoring)
        result = Trainer(tiny_args(directory, name="unit")).train(train[::2], test, digest)
    return result, test, in_memory


@pytest.mark.slow
def test_loss_falls_and_accuracy_beats_the_majority_class(trained):
    result, _, _ = trained
    first = sum(result.losses[:5]) / 5
    last = sum(result.losses[-5:]) / 5
    assert last < first * 0.8
    for task, groups in result.metrics.items():
        for group, metrics in groups.items():
            assert metrics.accuracy > metrics.majority_baseline, (task, group, metrics)


@pytest.mark.slow
def test_save_and_load_give_identical_predictions(trained):
    result, test, in_memory = trained
    texts = [e.text for e in test[:16]]
    loaded = load_model(result.directory)
    assert set(in_memory) == set(loaded.model.tasks) == {"intent", "sentiment"}
    for task, before in in_memory.items():
        after = predict_logits(loaded.model, loaded.tokenizer, texts, task, loaded.info.max_length)
        assert after.shape == before.shape == (16, len(loaded.model.tasks[task].labels))
        torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    # Sentiment has no unknown threshold: the public classifier's label is the arg-max.
    labels = loaded.model.tasks["sentiment"].labels
    predicted = AttentionTextClassifier(result.directory, "cpu").predict(texts, ["sentiment"])
    assert [p["sentiment"].label for p in predicted] == [
        labels[int(i)] for i in in_memory["sentiment"].argmax(dim=-1)
    ]
    info = read_info(result.directory)
    assert info.version == result.info.version and len(info.version) == 12
    card = (result.directory / "README.md").read_text()
    assert "Held-out test metrics" in card and info.encoder_source in card
    metrics = json.loads((result.directory / "metrics.json").read_text())
    assert metrics["n_test"] == len(test)


@pytest.mark.slow
def test_word_weights_sum_to_one_and_cover_the_words(trained):
    result, _, _ = trained
    classifier = AttentionTextClassifier(result.directory, "cpu")
    texts = [
        "My card was DECLINED at the pharmacy!!",
        "ok",
        "Northwind (NWB) cuts guidance; shares slide 12%",
        "  thanks 👍 café, no no  ",  # emoji ([UNK] over "👍"), accents, a repeated word
    ]
    threshold = json.loads((result.directory / "calibration.json").read_text())["unknown_threshold"]
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        assert set(prediction) == {"intent", "sentiment"}
        for name, task in prediction.items():
            assert sum(w.weight for w in task.words) == pytest.approx(1.0, abs=1e-5)
            assert [w.word for w in task.words] == split_words(text)
            assert [(w.start, w.end) for w in task.words] == word_spans(text)
            best, best_score = task.top[0]
            assert best_score == task.score
            if task.label == UNKNOWN:  # below the calibrated threshold: top keeps the best known
                assert name == "intent" and task.score < threshold
            else:
                assert task.label == best
            assert [s for _, s in task.top] == sorted((s for _, s in task.top), reverse=True)


@pytest.mark.slow
def test_truncated_text_keeps_weights_on_the_words_seen(trained):
    result, _, _ = trained
    classifier = AttentionTextClassifier(result.directory, "cpu")
    text = " ".join(f"word{i}" for i in range(200))
    prediction = classifier.predict([text], ["sentiment"])[0]["sentiment"]
    assert 0 < len(prediction.words) < 200
    assert sum(w.weight for w in prediction.words) == pytest.approx(1.0, abs=1e-5)
    assert [(w.start, w.end) for w in prediction.words] == word_spans(text)[: len(prediction.words)]


@pytest.mark.slow
def test_tampered_tokenizer_is_detected(trained, tmp_path):
    result, _, _ = trained
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


def test_macro_f1_ignores_labels_that_are_only_predicted():
    gold = ["a", "a", "b", "b"]
    pred = ["a", "x", "x", "b"]
    score, per_class = macro_f1(gold, pred)
    # a: tp1 fp0 fn1 -> 2/3; b: the same; "x" is no class, only two misses.
    assert per_class == pytest.approx({"a": 2 / 3, "b": 2 / 3})
    assert score == pytest.approx(2 / 3)
    assert macro_f1(["a"], ["x"]) == (0.0, {"a": 0.0})


def test_macro_f1_of_nothing_is_zero_and_lengths_must_match():
    assert macro_f1([], []) == (0.0, {})
    with pytest.raises(ValueError, match="predictions"):
        macro_f1(["a", "b"], ["a"])


@pytest.mark.slow
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


@pytest.mark.slow
def test_length_bucketed_predict_matches_one_padded_forward_in_input_order(trained):
    """Sorting into sub-batches changes padding only: labels, scores and words must equal a
    plain forward pass over the whole batch padded to its longest text."""
    from models.encoding import encode
    from models.words import merge_word_pieces

    result, test, _ = trained
    loaded = load_model(result.directory, torch.device("cpu"))
    classifier = AttentionTextClassifier(result.directory, "cpu", max_texts=3, max_tokens=60)
    texts = [e.text for e in test[:20]] + ["ok", " ".join(["long"] * 80)]
    got = classifier.predict(texts, ["sentiment"])
    batch = encode(loaded.tokenizer, texts, loaded.info.max_length)
    with torch.inference_mode():
        out = loaded.model(batch.input_ids, batch.attention_mask, batch.pool_mask, ["sentiment"])
    probs = torch.softmax(out["sentiment"].logits, dim=-1)
    alpha = out["sentiment"].attention.mean(dim=1)
    labels = loaded.model.tasks["sentiment"].labels
    for row, text in enumerate(texts):
        mine = got[row]["sentiment"]
        assert mine.label == labels[int(probs[row].argmax())]
        assert mine.score == pytest.approx(float(probs[row].max()), abs=1e-5)
        keep = [
            i
            for i in batch.pool_mask[row].nonzero().flatten().tolist()
            if batch.offsets[row][i][1] > batch.offsets[row][i][0]
        ]
        words = merge_word_pieces(
            text, [batch.offsets[row][i] for i in keep], alpha[row, keep].tolist()
        )
        total = sum(w.weight for w in words)
        assert [w.word for w in mine.words] == [w.word for w in words]
        assert [(w.start, w.end) for w in mine.words] == [(w.start, w.end) for w in words]
        for a, b in zip(mine.words, words, strict=True):
            assert a.weight == pytest.approx(b.weight / total, abs=1e-5)


def test_length_buckets_bound_texts_and_padded_tokens():
    from models.inference import length_buckets

    lengths = [5, 40, 7, 6, 39, 100, 8]
    groups = length_buckets(lengths, max_texts=3, max_tokens=90)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        assert len(group) <= 3
        assert len(group) == 1 or max(lengths[i] for i in group) * len(group) <= 90
    assert [lengths[g[0]] for g in groups] == sorted(lengths[g[0]] for g in groups)
    assert groups[-1] == [5]  # longer than the budget with company: alone
    with pytest.raises(ValueError):
        length_buckets(lengths, max_texts=0, max_tokens=10)
