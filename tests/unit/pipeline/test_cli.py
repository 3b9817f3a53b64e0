"""The command line as a user runs it: help texts and classify on a tiny trained model.

Commands run in-process through Typer's ``CliRunner`` (a subprocess would import
torch and transformers again, seconds per call); one test still starts
``python -m attnwatch`` (the composition root) so the entry point itself stays tested.
"""

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner, Result

from attnwatch.cli import app

COMMANDS = [
    "broker",
    "purge",
    "topics",
    "train",
    "classify",
    "evaluate",
    "explain-eval",
    "replay",
    "run",
    "demo",
    "config",
    "alerts",
    "dashboard",
    "report",
]


def attnwatch(*args: str, check: bool = True) -> Result:
    """Run ``attnwatch ARGS`` in this process; stdout and stderr come back separately."""
    result = CliRunner().invoke(app, list(args))
    if check:
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.mark.slow
def test_top_level_help_lists_every_command():
    # The one real subprocess: the entry point itself, with every command module registered.
    process = subprocess.run(
        [sys.executable, "-m", "attnwatch", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for command in COMMANDS:
        assert command in process.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    out = attnwatch(command, "--help").stdout
    assert "Usage" in out and command in out


@pytest.mark.slow
def test_classify_prints_labels_and_top_words(tiny_model):
    text = "my card was declined at the supermarket"
    human = attnwatch("--model-dir", str(tiny_model), "classify", text).stdout
    assert "intent" in human and "sentiment" in human and "words:" in human
    line = attnwatch("--model-dir", str(tiny_model), "classify", "--json", text).stdout
    result = json.loads(line)
    assert result["text"] == text
    assert sum(w["weight"] for w in result["sentiment"]["attention"]) == pytest.approx(1, abs=1e-3)
    assert [w["word"] for w in result["intent"]["attention"]] == text.split()
    assert all(text[w["start"] : w["end"]] == w["word"] for w in result["intent"]["attention"])
    assert result["intent"]["attention_faithful"] is None  # the tiny model was not measured


def test_missing_model_is_a_clear_error(tmp_path):
    result = attnwatch("--model-dir", str(tmp_path / "none"), "classify", "hi", check=False)
    assert result.exit_code == 2
    assert "attnwatch train" in result.stderr
    assert result.stdout == ""


def test_config_shows_settings_and_rejects_bad_values(tmp_path):
    shown = json.loads(attnwatch("--store-url", "sqlite:///x.db", "config").stdout)
    assert shown["store"]["url"] == "sqlite:///x.db"
    bad = attnwatch("--bootstrap-servers", "nohost", "config", check=False)
    assert bad.exit_code == 2 and "host:port" in bad.stderr


def test_evaluate_writes_reports_and_confusion_matrices(tiny_model, tmp_path):
    from models.data import seed

    data = tmp_path / "held_out.csv"
    chats = seed.load_chat()[::9]
    data.write_text(
        "text,intent,sentiment\n"
        + "\n".join(f'"{c.text.replace(chr(34), chr(39))}",{c.intent},{c.sentiment}' for c in chats)
    )
    out = tmp_path / "report"
    result = attnwatch(
        "--model-dir",
        str(tiny_model),
        "evaluate",
        str(tiny_model),
        "--data",
        str(data),
        "--output",
        str(out),
    )
    assert "intent" in result.stdout and "macro-F1" in result.stdout and "ECE" in result.stdout
    for name in (
        "report.md",
        "report.json",
        "confusion_intent.csv",
        "confusion_intent.png",
        "confusion_sentiment.csv",
        "confusion_sentiment.png",
    ):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["intent"]["n"] == len(chats)
    assert (out / "confusion_intent.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_explain_eval_reports_faithfulness_in_the_model_card(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    result = attnwatch("explain-eval", str(model), "--task", "sentiment", "--limit", "8")
    for method in ("attention", "grad_x_input", "random"):
        assert method in result.stdout
    card = (model / "README.md").read_text()
    assert card.count("## Explanation faithfulness: sentiment") == 1
    attnwatch("explain-eval", str(model), "--task", "sentiment", "--limit", "4")
    card = (model / "README.md").read_text()
    assert card.count("## Explanation faithfulness") == 1
    assert card.count("### Faithfulness (sentiment") == 1


def test_explain_eval_articles_scores_long_news_into_the_card(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    data = tmp_path / "articles.jsonl"
    rows = [
        {"headline": "Northwind profit jumps", "body": "Sales rose. Costs were flat."},
        {"headline": "Contoso fined by regulator", "body": "The fine is large. Shares fell."},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = attnwatch("explain-eval", str(model), "--articles", "--data", str(data))
    for method in ("attention", "sentence_uniform", "random"):
        assert f"| {method} |" in result.stdout
    assert "2 articles, 3.0 sentences" in result.stdout
    card = (model / "README.md").read_text()
    assert card.count("## Explanation faithfulness: sentiment/articles") == 1
    assert "## Explanation faithfulness: sentiment\n" not in card


def test_train_rejects_bad_distillation_settings(tmp_path):
    out = str(tmp_path / "m")
    bad_weight = attnwatch("train", "--output", out, "--distill-weight", "2", check=False)
    assert bad_weight.exit_code == 2 and "distill_weight" in bad_weight.stderr
    missing = attnwatch(
        "train", "--output", out, "--epochs", "1", "--teacher", str(tmp_path / "none"), check=False
    )
    assert missing.exit_code == 2 and "not a saved attnwatch model" in missing.stderr
    assert not (tmp_path / "m").exists()
