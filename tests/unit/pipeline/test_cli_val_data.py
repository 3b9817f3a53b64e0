"""``attnwatch train --val-data``: validation from a file, out-of-scope rows only set the threshold.

Trained through the real command with the tests' tiny random encoder in place of MiniLM
(``TrainingArgs`` is wrapped), so the whole path runs in seconds.
"""

import csv
import json

import pytest
from typer.testing import CliRunner

import attnwatch.cli.model as cli_model
from attnwatch.cli import app
from models.training.training_args import TrainingArgs
from tests.support.model import TINY_BERT


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)
    return path


def chats(n, start=0):
    rows = []
    for i in range(start, start + n):
        rows += [(f"card {i} declined again", "card"), (f"refund {i} arrived thanks", "refund")]
    return rows


def off_topic(n, label="oos"):
    topics = ("what is the weather in paris", "play some jazz music", "book a table for two")
    return [(f"{topics[i % 3]} {i}", label) for i in range(n)]


@pytest.fixture
def tiny_cli(monkeypatch):
    def tiny(**values):
        values.update(
            random_encoder_config=TINY_BERT,
            learning_rate=5e-3,
            head_learning_rate=5e-3,
            progress=False,
            device="cpu",
        )
        return TrainingArgs(**values)

    monkeypatch.setattr(cli_model, "TrainingArgs", tiny)


def train(*args):
    return CliRunner().invoke(
        app, ["train", "--task", "intent", "--faithfulness-sample", "0", *args]
    )


@pytest.mark.slow
def test_val_data_fits_the_threshold_on_its_out_of_scope_rows(tmp_path, tiny_cli):
    data = write_csv(tmp_path / "train.csv", chats(12) + off_topic(3, "unknown"))
    val = write_csv(tmp_path / "val.csv", chats(5, 100) + off_topic(8) + off_topic(2, "exchange"))
    out = tmp_path / "model"
    options = ["--epochs", "1", "--max-length", "32", "--batch-size", "8", "--output", str(out)]
    result = train("--data", str(data), "--val-data", str(val), *options)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    # The training file's "unknown" rows joined validation; "exchange" is an intent not trained.
    assert "10 in-scope, 13 out-of-scope intent rows (oos 8, unknown 3, exchange 2)" in (
        result.stdout
    )
    assert "fitted on 10 in-scope and 13 out-of-scope validation rows" in result.stdout
    assert json.loads((out / "labels.json").read_text())["intent"] == ["card", "refund"]
    calibration = json.loads((out / "calibration.json").read_text())
    assert (calibration["threshold_rule"], calibration["n_oos"]) == ("oos-validation", 13)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_validation"]) == (24, 23)  # nothing carved from train
    assert "threshold rule `oos-validation`" in (out / "README.md").read_text()


def test_val_data_errors_are_clear(tmp_path, tiny_cli):
    data = write_csv(tmp_path / "train.csv", chats(6))
    out = str(tmp_path / "model")
    missing = train("--data", str(data), "--val-data", str(tmp_path / "nope.csv"), "--output", out)
    assert missing.exit_code == 2 and "nope.csv does not exist" in missing.stderr
    only_oos = write_csv(tmp_path / "val.csv", off_topic(4))
    refused = train("--data", str(data), "--val-data", str(only_oos), "--output", out)
    assert refused.exit_code == 2 and "no in-scope" in refused.stderr
    with_oos = write_csv(tmp_path / "with_oos.csv", chats(6) + off_topic(2))
    unused = train("--data", str(with_oos), "--val-fraction", "0", "--output", out)
    assert unused.exit_code == 2 and "2 out-of-scope rows" in unused.stderr
    assert not (tmp_path / "model").exists()
