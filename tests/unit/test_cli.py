"""The command line as a user runs it: help texts and classify on a tiny trained model."""

import json
import subprocess
import sys

import pytest

COMMANDS = ["broker", "topics", "train", "classify", "replay", "run", "demo", "config"]


def attnwatch(*args, check=True):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def test_top_level_help_lists_every_command():
    out = attnwatch("--help").stdout
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    out = attnwatch(command, "--help").stdout
    assert "Usage" in out and command in out


def test_classify_prints_labels_and_top_words(tiny_model):
    text = "my card was declined at the supermarket"
    human = attnwatch("--model-dir", str(tiny_model), "classify", text).stdout
    assert "intent" in human and "sentiment" in human and "words:" in human
    line = attnwatch("--model-dir", str(tiny_model), "classify", "--json", text).stdout
    result = json.loads(line)
    assert result["text"] == text
    assert sum(w["weight"] for w in result["sentiment"]["attention"]) == pytest.approx(1, abs=1e-3)
    assert [w["word"] for w in result["intent"]["attention"]] == text.split()


def test_missing_model_is_a_clear_error(tmp_path):
    result = attnwatch("--model-dir", str(tmp_path / "none"), "classify", "hi", check=False)
    assert result.returncode == 2
    assert "attnwatch train" in result.stderr


def test_config_shows_settings_and_rejects_bad_values(tmp_path):
    shown = json.loads(attnwatch("--store-url", "sqlite:///x.db", "config").stdout)
    assert shown["store_url"] == "sqlite:///x.db"
    bad = attnwatch("--bootstrap-servers", "nohost", "config", check=False)
    assert bad.returncode == 2 and "host:port" in bad.stderr
