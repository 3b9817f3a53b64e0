"""Training features: data formats, layer-wise LR decay, early stopping, resume, calibration."""

import json
import shutil

import pytest
import torch

import models.training.trainer as trainer_module
from models.classifier import UNKNOWN, AttentionTextClassifier
from models.data.datasets import OOS, load_dataset
from models.data.examples import Example
from models.evaluation.metrics import TaskMetrics
from models.training.optim import layer_scale
from models.training.splits import split_validation
from models.training.trainer import Trainer
from tests.support.model import tiny_args as shared_tiny_args


def tiny_args(tmp_path, **kw):
    return shared_tiny_args(tmp_path / "m", **{"batch_size": 8, "max_length": 32, **kw})


def rows(n=12):
    out = []
    for i in range(n):
        out.append(Example(f"card {i} declined again", {"intent": "card", "sentiment": "negative"}))
        out.append(
            Example(f"refund {i} arrived thanks", {"intent": "refund", "sentiment": "positive"})
        )
    return out


def test_phrasebank_banking77_and_clinc150_readers(tmp_path):
    pb = tmp_path / "Sentences_50Agree.txt"
    pb.write_bytes(
        "Profit rose @ 5 % in Espoo@positive\nSales fell . Ã¤@negative\n".encode(
            "latin-1", "replace"
        )
    )
    examples = load_dataset(pb, "phrasebank")
    assert [e.labels["sentiment"] for e in examples] == ["positive", "negative"]
    assert examples[0].text == "Profit rose @ 5 % in Espoo"

    b77 = tmp_path / "train.csv"
    b77.write_text("text,category\r\nmy card is lost,lost_or_stolen_card\r\n", encoding="utf-8")
    assert load_dataset(b77, "banking77")[0].labels == {"intent": "lost_or_stolen_card"}

    clinc = tmp_path / "data_full.json"
    clinc.write_text(
        json.dumps(
            {
                "train": [["hi", "greeting"]],
                "val": [["yo", "greeting"]],
                "test": [["hey", "greeting"]],
                "oos_val": [["pizza?", "oos"]],
                "oos_test": [["weather?", "oos"]],
                "oos_train": [["x", "oos"]],
            }
        )
    )
    assert [e.labels["intent"] for e in load_dataset(clinc, "clinc150", "train")] == ["greeting"]
    assert [e.labels["intent"] for e in load_dataset(clinc, "clinc150", "test")] == [
        "greeting",
        OOS,
    ]
    with pytest.raises(ValueError, match="unknown format"):
        load_dataset(pb, "parquet")
    bad = tmp_path / "bad.txt"
    bad.write_text("no label here\n")
    with pytest.raises(ValueError, match=":1:"):
        load_dataset(bad, "phrasebank")


def test_layer_scale_decays_towards_the_embeddings():
    depth = 6
    assert layer_scale("encoder.encoder.layer.5.attention.self.query.weight", depth, 0.8) == (
        pytest.approx(0.8)
    )
    assert layer_scale("encoder.encoder.layer.0.output.dense.weight", depth, 0.8) == (
        pytest.approx(0.8**6)
    )
    assert layer_scale("encoder.embeddings.word_embeddings.weight", depth, 0.8) == (
        pytest.approx(0.8**7)
    )
    assert layer_scale("encoder.encoder.layer.0.output.dense.weight", depth, 1.0) == 1.0


def test_validation_split_is_stratified_and_disjoint():
    data = rows(20)
    train, val = split_validation(data, 0.25, seed=0)
    assert len(train) + len(val) == len(data)
    assert {e.text for e in train}.isdisjoint({e.text for e in val})
    assert sorted(e.labels["intent"] for e in val) == ["card"] * 5 + ["refund"] * 5


@pytest.mark.slow
def test_split_seed_keeps_one_validation_set_across_seeds(tmp_path, monkeypatch):
    seen = []

    def record(model, tokenizer, examples, max_length):
        seen.append(sorted(e.text for e in examples))
        return {"intent": {"default": TaskMetrics(len(examples), 0, 0.5, 0)}}

    monkeypatch.setattr(trainer_module, "evaluate", record)
    for name, kw in [("a", {"seed": 0}), ("b", {"seed": 1, "split_seed": 0}), ("c", {"seed": 1})]:
        Trainer(tiny_args(tmp_path / name, epochs=1, val_fraction=0.25, **kw)).train(
            rows(20), [], "h"
        )
    seed0, seed1_split0, seed1 = seen[0], seen[1], seen[-1]
    assert seed1_split0 == seed0
    assert seed1 != seed0


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch(tmp_path, monkeypatch):
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2])
    states = []
    real_cpu_state = trainer_module._cpu_state

    def fake_evaluate(model, tokenizer, examples, max_length):
        states.append(real_cpu_state(model))
        return {"intent": {"default": TaskMetrics(len(examples), 0, next(scores), 0)}}

    monkeypatch.setattr(trainer_module, "evaluate", fake_evaluate)
    result = Trainer(tiny_args(tmp_path, epochs=5, patience=2, val_fraction=0.25)).train(
        rows(), [], "h"
    )
    assert [h["epoch"] for h in result.history] == [1, 2, 3]  # stopped after 2 stale epochs
    saved = AttentionTextClassifier(result.directory, "cpu")._model.state_dict()
    for name, tensor in states[0].items():  # the saved weights are epoch 1's
        assert torch.equal(saved[name].cpu(), tensor), name
    assert not (result.directory / "checkpoint").exists()


@pytest.mark.slow
def test_interrupted_training_resumes_from_the_last_epoch(tmp_path, monkeypatch):
    real_save = trainer_module._save_checkpoint

    def crash_after_first_epoch(directory, model, optimizer, scheduler, progress):
        real_save(directory, model, optimizer, scheduler, progress)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "_save_checkpoint", crash_after_first_epoch)
    args = tiny_args(tmp_path, epochs=3, patience=0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(args).train(rows(), [], "h")
    first_epoch = torch.load(args.output_dir / "checkpoint" / "state.pt", weights_only=False)
    assert first_epoch["progress"]["epoch"] == 1
    monkeypatch.setattr(trainer_module, "_save_checkpoint", real_save)
    resumed = Trainer(tiny_args(tmp_path, epochs=3, patience=0, resume=True)).train(rows(), [], "h")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[0] == first_epoch["progress"]["history"][0]
    steps_per_epoch = len(first_epoch["progress"]["losses"])
    assert len(resumed.losses) == 3 * steps_per_epoch


@pytest.mark.slow
def test_calibration_is_saved_and_applied(tmp_path):
    result = Trainer(tiny_args(tmp_path, val_fraction=0.3)).train(rows(20), rows(4), "h")
    assert result.calibration is not None and result.calibration.temperature > 0
    saved = json.loads((result.directory / "calibration.json").read_text())
    assert saved["temperature"] == pytest.approx(result.calibration.temperature)
    assert "Intent calibration" in (result.directory / "README.md").read_text()

    strict = tmp_path / "strict"
    shutil.copytree(result.directory, strict)
    (strict / "calibration.json").write_text(json.dumps({**saved, "unknown_threshold": 1.01}))
    prediction = AttentionTextClassifier(strict, "cpu").predict(["card 3 declined again"])[0]
    assert prediction["intent"].label == UNKNOWN
    assert prediction["intent"].top[0][0] in {"card", "refund"}
    assert prediction["sentiment"].label != UNKNOWN  # the threshold is the intent's only


@pytest.mark.slow
def test_single_task_restriction(tmp_path):
    result = Trainer(tiny_args(tmp_path, tasks=("sentiment",), epochs=1)).train(rows(), [], "h")
    assert [t.name for t in result.info.tasks] == ["sentiment"]
    assert result.calibration is None


@pytest.mark.slow
def test_multi_head_pooling_trains_and_logs_mean_weights(tmp_path):
    result = Trainer(tiny_args(tmp_path, num_heads=4, epochs=1)).train(rows(), [], "h")
    assert {t.num_heads for t in result.info.tasks} == {4}
    words = AttentionTextClassifier(result.directory, "cpu").predict(["card 1 declined"])[0]
    assert sum(w.weight for w in words["intent"].words) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_attention_entropy_penalty_makes_weights_peakier(tmp_path):
    import math

    from models.training.regularization import attention_entropy

    uniform = torch.full((2, 1, 4), 0.25)
    assert float(attention_entropy(uniform)) == pytest.approx(math.log(4))
    one_hot = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    assert float(attention_entropy(one_hot)) == pytest.approx(0.0, abs=1e-6)

    def mean_entropy(directory):
        classifier = AttentionTextClassifier(directory, "cpu")
        texts = [e.text for e in rows(6)]
        words = [p["intent"].words for p in classifier.predict(texts)]
        return sum(
            -sum(w.weight * math.log(max(w.weight, 1e-12)) for w in ws) for ws in words
        ) / len(words)

    plain = Trainer(tiny_args(tmp_path / "plain", epochs=8, val_fraction=0)).train(rows(), [], "h")
    peaky = Trainer(
        tiny_args(tmp_path / "peaky", epochs=8, val_fraction=0, attention_entropy=1.0)
    ).train(rows(), [], "h")
    assert mean_entropy(peaky.directory) < mean_entropy(plain.directory) - 0.1


def test_weight_average_is_the_mean_and_keeps_integer_buffers(tmp_path):
    from models.training.averaging import averaged_state, weight_average

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
            self.register_buffer("ids", torch.tensor([1, 2]))

    net = Net()
    average = weight_average(net)
    with pytest.raises(ValueError, match="no state"):
        averaged_state(average)
    average.update_parameters(net)
    with torch.no_grad():
        net.w.copy_(torch.tensor([3.0, 6.0]))
        net.ids.copy_(torch.tensor([5, 6]))
    average.update_parameters(net)
    mean = averaged_state(average)
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["w"].dtype == torch.float32
    assert torch.equal(mean["ids"], torch.tensor([5, 6]))
    assert torch.equal(net.w.detach(), torch.tensor([3.0, 6.0]))  # the model is not touched

    # the mean and its count survive a checkpoint: a third state is weighted 1/3
    torch.save({"average": average.state_dict()}, tmp_path / "state.pt")
    resumed = weight_average(Net())
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False)["average"])
    assert int(resumed.n_averaged) == 2
    with torch.no_grad():
        net.w.copy_(torch.tensor([8.0, 0.0]))
    resumed.update_parameters(net)
    assert torch.allclose(averaged_state(resumed)["w"], torch.tensor([4.0, 8.0 / 3]))


@pytest.mark.slow
def test_checkpoint_averaging_is_kept_only_when_validation_prefers_it(tmp_path, monkeypatch):
    epoch_states = []
    real_cpu_state = trainer_module._cpu_state

    def fake_evaluate(model, tokenizer, examples, max_length):
        epoch_states.append(real_cpu_state(model))
        # epochs 1-3 score 0.5, 0.6, 0.7; the average (4th call) scores 0.9
        score = [0.5, 0.6, 0.7, 0.9][len(epoch_states) - 1]
        return {"intent": {"default": TaskMetrics(len(examples), 0, score, 0)}}

    monkeypatch.setattr(trainer_module, "evaluate", fake_evaluate)
    result = Trainer(
        tiny_args(tmp_path, epochs=3, patience=0, val_fraction=0.25, average_last=2)
    ).train(rows(), [], "h")
    saved = AttentionTextClassifier(result.directory, "cpu")._model.state_dict()
    name = "heads.intent.classifier.weight"
    expected = (epoch_states[1][name] + epoch_states[2][name]) / 2
    assert torch.allclose(saved[name].cpu(), expected, atol=1e-6)
    metrics = json.loads((result.directory / "metrics.json").read_text())
    assert metrics["averaged_last"] == 2
    assert "checkpoint averaging" in (result.directory / "README.md").read_text()

    epoch_states.clear()
    monkeypatch.setattr(
        trainer_module,
        "evaluate",
        lambda model, tokenizer, examples, max_length: (
            epoch_states.append(real_cpu_state(model))
            or {
                "intent": {
                    "default": TaskMetrics(1, 0, [0.5, 0.9, 0.7, 0.6][len(epoch_states) - 1], 0)
                }
            }
        ),
    )
    kept = Trainer(
        tiny_args(tmp_path / "b", epochs=3, patience=0, val_fraction=0.25, average_last=2)
    ).train(rows(), [], "h")
    saved = AttentionTextClassifier(kept.directory, "cpu")._model.state_dict()
    assert torch.equal(saved[name].cpu(), epoch_states[1][name])  # epoch 2 beat the average
    assert json.loads((kept.directory / "metrics.json").read_text())["averaged_last"] == 0


@pytest.mark.slow
def test_resumed_run_averages_each_epoch_exactly_once(tmp_path, monkeypatch):
    real_save = trainer_module._save_checkpoint
    real_cpu_state = trainer_module._cpu_state
    epoch_states = []

    def fake_evaluate(model, tokenizer, examples, max_length):
        epoch_states.append(real_cpu_state(model))
        # every epoch scores 0.5; the average (evaluated last) scores 0.9
        return {"intent": {"default": TaskMetrics(1, 0, 0.9 if len(epoch_states) > 3 else 0.5, 0)}}

    def crash_after_second_epoch(directory, model, optimizer, scheduler, progress):
        real_save(directory, model, optimizer, scheduler, progress)
        if progress.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "evaluate", fake_evaluate)
    monkeypatch.setattr(trainer_module, "_save_checkpoint", crash_after_second_epoch)
    args = dict(epochs=3, patience=0, val_fraction=0.25, average_last=3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_args(tmp_path, **args)).train(rows(), [], "h")
    saved = torch.load(tmp_path / "m" / "checkpoint" / "state.pt", weights_only=False)
    assert int(saved["progress"]["average_state"]["n_averaged"]) == 2

    monkeypatch.setattr(trainer_module, "_save_checkpoint", real_save)
    result = Trainer(tiny_args(tmp_path, resume=True, **args)).train(rows(), [], "h")
    name = "heads.intent.classifier.weight"
    expected = sum(s[name] for s in epoch_states[:3]) / 3
    weights = AttentionTextClassifier(result.directory, "cpu")._model.state_dict()[name]
    assert torch.allclose(weights.cpu(), expected, atol=1e-6)
