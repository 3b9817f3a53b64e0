"""Shared fixtures: a real Tansu broker and a tiny trained model, used by every integration test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from models.training.training_args import TrainingArgs

pytest_plugins = ["tests.fixtures.postgres"]

#: A randomly initialised BERT small enough to train in seconds on 2 CPU cores.
TINY_BERT = {
    "hidden_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "max_position_embeddings": 128,
}


def tiny_args(output_dir: Path, **overrides: object) -> TrainingArgs:
    """Training arguments for the tiny BERT: fast, CPU, no progress bar."""
    values: dict[str, object] = {
        "output_dir": output_dir,
        "random_encoder_config": TINY_BERT,
        "epochs": 3,
        "batch_size": 32,
        "learning_rate": 5e-3,
        "head_learning_rate": 5e-3,
        "max_length": 48,
        "device": "cpu",
        "progress": False,
        # Measuring faithfulness (and retraining on failure) is tested on its own
        # (tests/unit/models/test_trust.py); the other tests keep their training fast.
        "faithfulness_sample": 0,
    }
    values.update(overrides)
    return TrainingArgs(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
    """A Tansu broker on a free loopback port for the whole session."""
    log_file = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with EmbeddedBroker(log_file=log_file) as running:
        yield running


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny attention classifier trained on a slice of the seed data (intent + sentiment)."""
    from models.data.loading import seed_examples
    from models.training.trainer import Trainer

    train, test, digest = seed_examples()
    directory = tmp_path_factory.mktemp("model") / "tiny"
    Trainer(tiny_args(directory, name="tiny-test")).train(train[::3], test[::4], digest)
    return directory


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The CLI's callback points the root logger at CliRunner's captured stderr, which is
    # closed after the call; give later tests the logging they started with.
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    handlers, level, kafka_level = root.handlers[:], root.level, kafka.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    kafka.setLevel(kafka_level)


@pytest.fixture(autouse=True)
def _no_config_file_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ATTNWATCH_"):
            monkeypatch.delenv(name)
