"""The tiny BERT every test that needs a trained model uses, and how it is trained."""

from __future__ import annotations

from pathlib import Path

from models.training.training_args import TrainingArgs

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


def train_tiny_model(directory: Path) -> Path:
    """Train the session's tiny attention classifier (intent + sentiment) into ``directory``.

    A slice of the seed data: every third training example, every fourth test one.
    """
    from models.data.loading import seed_examples
    from models.training.trainer import Trainer

    train, test, digest = seed_examples()
    Trainer(tiny_args(directory, name="tiny-test")).train(train[::3], test[::4], digest)
    return directory
