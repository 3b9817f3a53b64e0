"""Weights are read only through safetensors: a pickle anywhere near a model is refused.

Each pickle written here would create a marker directory if anything unpickled it, so the
tests also show that refusing happens before any byte of the pickle is read.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, BertConfig, BertModel

from attnwatch.service import load_classifier
from attnwatch.settings import Settings
from models.encoding import default_encoder_path, load_tokenizer
from models.modeling import AttentionClassifier, TaskSpec
from models.saving import ModelDirError, ModelFormatError, load_model, save_model
from models.training.state import load_checkpoint
from pipeline.errors import ModelError
from tests.support.model import TINY_BERT

TASKS = [TaskSpec("sentiment", ("negative", "positive"))]


class _MakeDir:
    """Unpickling this runs ``os.mkdir(path)``: the evidence that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def write_pickle(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Protocol 2, torch.save's own: torch.load then reads it as a legacy checkpoint.
    path.write_bytes(pickle.dumps({"weight": _MakeDir(marker)}, protocol=2))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved (untrained) tiny model: saving is all these tests need, not training."""
    tokenizer = load_tokenizer(default_encoder_path())
    config = AutoConfig.for_model("bert", vocab_size=len(tokenizer), **TINY_BERT)
    model = AttentionClassifier.from_config(config, TASKS)
    directory = tmp_path_factory.mktemp("saved") / "tiny"
    save_model(
        model,
        tokenizer,
        directory,
        name="tiny-safetensors",
        max_length=32,
        encoder_source="random-init bert",
        created_at="2026-01-01T00:00:00+00:00",
        card="# tiny\n",
        metrics={},
    )
    return directory


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    return target


def test_the_marker_pickle_does_run_code_when_unpickled(tmp_path):
    # Without this, "the marker was not created" below would prove nothing.
    marker = tmp_path / "unpickled"
    write_pickle(tmp_path / "payload.bin", marker)
    pickle.loads((tmp_path / "payload.bin").read_bytes())  # noqa: S301 - the point of the test
    assert marker.is_dir()


@pytest.mark.slow
def test_a_clean_saved_model_loads(saved):
    loaded = load_model(saved)
    assert loaded.info.name == "tiny-safetensors"
    assert not [p for p in saved.rglob("*") if p.suffix in {".bin", ".pt", ".pkl"}]


def test_saved_weights_are_readable_by_other_users(saved):
    # safetensors writes 0600; a model trained as root must load as the service user.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((saved / "model.safetensors").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize(
    "name",
    [
        "pytorch_model.bin",
        "model.pt",
        "weights.pth",
        "last.ckpt",
        "heads.pkl",
        "x.pickle",
        "clf.joblib",
        "1_Pooling/pytorch_model.bin",
    ],
)
def test_a_saved_model_with_a_pickle_weight_file_is_refused(copy, tmp_path, name):
    marker = tmp_path / "unpickled"
    write_pickle(copy / name, marker)
    with pytest.raises(ModelFormatError, match=name.replace(".", r"\.")) as raised:
        load_model(copy)
    assert "safetensors" in str(raised.value)
    assert isinstance(raised.value, ModelDirError)  # so the run loop reports it as ModelError
    assert not marker.exists()


def test_weights_that_are_not_safetensors_are_refused(copy, tmp_path):
    marker = tmp_path / "unpickled"
    write_pickle(copy / "model.safetensors", marker)
    with pytest.raises(ModelFormatError, match="not a safetensors file"):
        load_model(copy)
    assert not marker.exists()


def test_the_run_loop_reports_a_pickle_as_a_clean_model_error(copy, tmp_path):
    write_pickle(copy / "pytorch_model.bin", tmp_path / "unpickled")
    settings = Settings(model_dir=copy, device="cpu")
    with pytest.raises(ModelError, match=r"pytorch_model\.bin"):
        load_classifier(settings)


@pytest.fixture
def encoder_dir(tmp_path: Path) -> Path:
    """A Hugging Face style encoder directory (config.json and weights)."""
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    directory = tmp_path / "encoder"
    BertModel(config).save_pretrained(directory)
    return directory


def test_an_encoder_with_only_pickle_weights_is_refused(encoder_dir, tmp_path):
    (encoder_dir / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    write_pickle(encoder_dir / "pytorch_model.bin", marker)
    with pytest.raises(ModelFormatError, match=r"pytorch_model\.bin"):
        AttentionClassifier.from_encoder(str(encoder_dir), TASKS)
    assert not marker.exists()


def test_an_encoder_with_both_formats_loads_only_the_safetensors(encoder_dir, tmp_path):
    # The Hugging Face layout often ships both; use_safetensors=True never opens the pickle.
    marker = tmp_path / "unpickled"
    write_pickle(encoder_dir / "pytorch_model.bin", marker)
    model = AttentionClassifier.from_encoder(str(encoder_dir), TASKS)
    assert model.encoder.config.hidden_size == 16
    assert not marker.exists()


def test_a_training_checkpoint_is_loaded_without_running_code(tmp_path):
    marker = tmp_path / "unpickled"
    checkpoint = tmp_path / "checkpoint"
    write_pickle(checkpoint / "state.pt", marker)
    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(checkpoint, net, optimizer, scheduler)
    assert not marker.exists()
