"""One source of truth: `train` and `demo` take their training defaults from TrainingArgs."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import typer
from typer.testing import CliRunner

from attnwatch.cli import app
from attnwatch.cli import model as cli_model
from attnwatch.cli import run as cli_run
from attnwatch.demo import run as demo_run
from models.training.training_args import TrainingArgs
from models.training.trust import judge


def _train_options() -> dict[str, object]:
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    return {p.name: p.default for p in command.params}


def test_every_train_option_defaults_to_the_training_args_default():
    options = _train_options()
    fields = {f.name: f.default for f in dataclasses.fields(TrainingArgs)}
    shared = sorted(set(options) & set(fields))
    # The options that mirror TrainingArgs, not just a couple of them.
    assert len(shared) >= 18, shared
    for name in shared:
        if fields[name] is dataclasses.MISSING:
            continue
        assert options[name] == fields[name], name


def test_demo_trains_through_the_train_command_path(tmp_path, monkeypatch):
    seen: list[TrainingArgs] = []

    class Result:
        seconds = 1.0
        trust = {
            "intent": judge(
                "intent",
                100,
                {"attention": 0.5, "grad_x_input": 0.3, "random": 0.1},
                {"attention": 0.1, "grad_x_input": 0.2, "random": 0.4},
            )
        }

    def fake_train_model(args, data=None, data_format="csv", test_data=None):
        seen.append(args)
        assert data is None  # the seed data, as `attnwatch train` with no options
        return Result()

    monkeypatch.setattr(cli_model, "train_model", fake_train_model)
    monkeypatch.setattr(demo_run, "run_demo", lambda *a, **k: None)
    # No real signal handlers in the test process.
    monkeypatch.setattr(cli_run, "stop_on_signals", lambda *a: threading.Event())
    model_dir = tmp_path / "none"
    result = CliRunner().invoke(app, ["--model-dir", str(model_dir), "demo", "--duration", "1"])
    assert result.exit_code == 0, result.output
    assert "intent attention: faithful (5.00x random, 1.67x gradient x input)" in result.output
    assert len(seen) == 1
    args = seen[0]
    assert Path(args.output_dir) == model_dir
    defaults = TrainingArgs(output_dir=model_dir)
    assert dataclasses.replace(args, device="auto") == defaults
