"""A smaller distilled student: fewer encoder layers, kept from the pretrained encoder."""

import json

import pytest
import torch
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel
from typer.testing import CliRunner

import models.training.trainer as trainer_module
from attnwatch.cli import app
from attnwatch.cli import model as cli_model
from models.classifier import AttentionTextClassifier
from models.data.examples import Example
from models.data.loading import seed_examples
from models.fast.layers import chosen_layers, keep_layers
from models.training.trainer import Trainer
from tests.support.model import TINY_BERT
from tests.support.model import tiny_args as shared_tiny_args

#: The tiny BERT with four layers, so that keeping two of them is a real choice.
DEEPER = {**TINY_BERT, "num_hidden_layers": 4}


def tiny_args(path, **kw):
    return shared_tiny_args(path, **{"batch_size": 8, "max_length": 32, **kw})


def rows(n=12):
    out = []
    for i in range(n):
        out.append(Example(f"card {i} declined again", {"intent": "card", "sentiment": "negative"}))
        out.append(
            Example(f"refund {i} arrived thanks", {"intent": "refund", "sentiment": "positive"})
        )
    return out


def bert(layers=6):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.mark.parametrize(
    ("total", "n", "expected"), [(6, 3, [0, 1, 2]), (6, 1, [0]), (6, 6, list(range(6)))]
)
def test_the_bottom_layers_are_kept(total, n, expected):
    assert chosen_layers(total, n) == expected


def test_keep_layers_keeps_the_bottom_layers_with_their_weights():
    encoder = bert(6)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    ids = torch.tensor([[1, 5, 7, 9, 2]])
    with torch.no_grad():
        full = encoder(input_ids=ids, output_hidden_states=True).hidden_states

    assert keep_layers(encoder, 3) == [0, 1, 2]

    assert len(encoder.encoder.layer) == 3
    assert encoder.config.num_hidden_layers == 3
    after = encoder.state_dict()
    assert not any(k.startswith(("encoder.layer.3.", "encoder.layer.5.")) for k in after)
    for key, value in after.items():
        assert torch.equal(value, before[key]), key  # kept layer i is still old layer i
    assert {m.layer_idx for m in encoder.modules() if hasattr(m, "layer_idx")} == {0, 1, 2}
    with torch.no_grad():
        shallow = encoder(input_ids=ids).last_hidden_state
    # the student's output is exactly what the full encoder had after its third layer
    assert torch.allclose(shallow, full[3], atol=1e-6)


def test_keep_layers_rejects_bad_counts_and_unknown_architectures():
    for n in (0, 7):
        with pytest.raises(ValueError, match="between 1 and the encoder's 6 layers"):
            keep_layers(bert(6), n)
    distil = DistilBertModel(
        DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32)
    )
    with pytest.raises(ValueError, match="cannot drop layers of a 'distilbert' encoder"):
        keep_layers(distil, 1)
    with pytest.raises(ValueError, match="cannot drop layers of a 'Linear'"):
        keep_layers(torch.nn.Linear(2, 2), 1)


def test_training_args_check_encoder_layers(tmp_path):
    with pytest.raises(ValueError, match="encoder_layers must be between 1 and"):
        tiny_args(tmp_path, encoder_layers=0)
    with pytest.raises(ValueError, match="between 1 and the encoder's 2 layers, got 3"):
        tiny_args(tmp_path, encoder_layers=3)
    assert tiny_args(tmp_path, encoder_layers=2).encoder_layers == 2


def test_a_pretrained_encoder_with_fewer_layers_fails_before_training(tmp_path):
    args = tiny_args(tmp_path / "m", random_encoder_config=None, encoder_layers=7)
    with pytest.raises(ValueError, match="between 1 and the encoder's 6 layers, got 7"):
        Trainer(args).train(rows(), [], "h")
    assert not (tmp_path / "m").exists()


def every_label(examples, per_label=2):
    """The first ``per_label`` examples of each intent and each sentiment (a few dozen)."""
    counts: dict[tuple[str, str], int] = {}
    kept = []
    for e in examples:
        keys = [(task, label) for task, label in e.labels.items()]
        if any(counts.get(k, 0) < per_label for k in keys):
            kept.append(e)
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
    return kept


@pytest.mark.slow
def test_a_distilled_student_saves_loads_and_predicts_with_its_layers(tiny_model, tmp_path):
    train, test, digest = seed_examples()
    args = tiny_args(
        tmp_path / "student",
        random_encoder_config=DEEPER,
        encoder_layers=2,
        teachers=(tiny_model,),
        epochs=1,
        val_fraction=0,
        name="student",
    )
    # from the teacher's own training texts, so the student has exactly its labels
    result = Trainer(args).train(every_label(train[::3]), test[::16], digest)

    config = json.loads((result.directory / "config.json").read_text())
    assert config["encoder"]["num_hidden_layers"] == 2
    metrics = json.loads((result.directory / "metrics.json").read_text())
    assert metrics["encoder_layers"] == 2 and metrics["encoder_layers_kept"] == [0, 1]
    assert metrics["teachers"][0]["name"] == "tiny-test"
    card = (result.directory / "README.md").read_text()
    assert "knowledge distillation" in card and "smaller encoder: 2 transformer layers" in card

    classifier = AttentionTextClassifier(result.directory, "cpu")
    assert len(classifier._model.encoder.encoder.layer) == 2
    prediction = classifier.predict(["my card was declined twice today"])[0]
    assert set(prediction) == {"intent", "sentiment"}
    for task in ("intent", "sentiment"):
        assert sum(w.weight for w in prediction[task].words) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_a_student_resumes_with_its_layers(tmp_path, monkeypatch):
    real_save = trainer_module._save_checkpoint

    def crash_after_first_epoch(directory, model, optimizer, scheduler, progress):
        real_save(directory, model, optimizer, scheduler, progress)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "_save_checkpoint", crash_after_first_epoch)
    student = {"random_encoder_config": DEEPER, "epochs": 2, "patience": 0}
    args = tiny_args(tmp_path / "m", encoder_layers=2, **student)
    with pytest.raises(KeyboardInterrupt):
        Trainer(args).train(rows(), [], "h")
    state = torch.load(args.output_dir / "checkpoint" / "state.pt", weights_only=True)
    assert {k.split(".")[3] for k in state["model"] if k.startswith("encoder.encoder.layer.")} == {
        "0",
        "1",
    }
    monkeypatch.setattr(trainer_module, "_save_checkpoint", real_save)

    other_depth = tiny_args(tmp_path / "m", encoder_layers=3, resume=True, **student)
    with pytest.raises(ValueError, match="was written for another model"):
        Trainer(other_depth).train(rows(), [], "h")
    resumed = Trainer(tiny_args(tmp_path / "m", encoder_layers=2, resume=True, **student)).train(
        rows(), [], "h"
    )
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    config = json.loads((resumed.directory / "config.json").read_text())
    assert config["encoder"]["num_hidden_layers"] == 2


def test_train_command_passes_encoder_layers(tmp_path, monkeypatch):
    seen = []

    class Result:
        seconds = 1.0
        metrics: dict[str, object] = {}
        calibration = None
        directory = tmp_path
        trust: dict[str, object] = {}
        warnings: list[str] = []

        class info:  # noqa: N801
            name, version = "m", "v"

    def fake_train_model(args, data=None, data_format="csv", test_data=None, val_data=None):
        seen.append(args)
        return Result()

    monkeypatch.setattr(cli_model, "train_model", fake_train_model)
    out = str(tmp_path / "m")
    result = CliRunner().invoke(app, ["train", "--output", out, "--encoder-layers", "3"])
    assert result.exit_code == 0, result.output
    assert seen[0].encoder_layers == 3
    bad = CliRunner().invoke(app, ["train", "--output", out, "--encoder-layers", "0"])
    assert bad.exit_code == 2 and "encoder-layers" in bad.stderr
