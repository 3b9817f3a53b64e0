"""Training measures its own attention's faithfulness, records it and says so when it fails."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
import torch
from typer.testing import CliRunner

from attnwatch.cli import app
from consumers.source import SourceRecord
from models.attention import AttentionPooling
from models.classifier import AttentionTextClassifier
from models.data.examples import Example
from models.saving import read_info
from models.training.trainer import Trainer
from models.training.trust import MIN_TEXTS, judge
from pipeline.schema import ChatEvent
from pipeline.stream.enrich import enrich
from tests.support.model import tiny_args

FILLERS = "please help me with my account today now the a quick question about this".split()
KEYWORDS = {"refund": "refund_request", "freeze": "card_freeze", "statement": "statement_copy"}
SENTIMENT = {"refund": "negative", "freeze": "negative", "statement": "neutral"}


def keyword_examples(n: int, seed: int) -> list[Example]:
    """One decisive keyword at a random place among filler words: the answer is known."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        keyword = list(KEYWORDS)[i % len(KEYWORDS)]
        words = rng.sample(FILLERS, 6)
        words.insert(rng.randrange(len(words) + 1), keyword)
        labels = {"intent": KEYWORDS[keyword], "sentiment": SENTIMENT[keyword]}
        out.append(Example(" ".join(words), labels, "chat"))
    return out


def scores(attention: float, gradient: float, rand: float) -> dict[str, float]:
    return {"attention": attention, "grad_x_input": gradient, "random": rand}


def test_the_bar_needs_twice_random_and_at_least_gradient_x_input() -> None:
    suff = scores(0.1, 0.2, 0.4)
    passed = judge("intent", 100, scores(0.5, 0.4, 0.2), suff)
    assert passed.faithful is True and passed.vs_random == pytest.approx(2.5)
    below_random = judge("intent", 100, scores(0.3, 0.2, 0.2), suff)
    assert below_random.faithful is False and "2 x random" in below_random.reason
    below_gradient = judge("intent", 100, scores(0.5, 0.6, 0.1), suff)
    assert below_gradient.faithful is False and "gradient x input" in below_gradient.reason
    ignores_input = judge("intent", 100, scores(0.01, -0.01, -0.02), suff)
    assert ignores_input.faithful is False and "hardly lowers" in ignores_input.reason
    too_few = judge("intent", MIN_TEXTS - 1, scores(0.0, 0.6, 0.1), suff)
    assert too_few.faithful is None and "not judged" in too_few.reason


@pytest.mark.slow
def test_uniform_attention_fails_the_bar_and_every_consumer_is_told(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys fixed at zero make every pooling weight uniform: the shading then means nothing."""
    original = AttentionPooling.__init__

    def uniform(self: AttentionPooling, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        torch.nn.init.zeros_(self.key.weight)
        torch.nn.init.zeros_(self.key.bias)
        self.key.requires_grad_(False)

    monkeypatch.setattr(AttentionPooling, "__init__", uniform)
    directory = tmp_path / "uniform"
    args = tiny_args(directory, epochs=4, val_fraction=0.3, faithfulness_sample=60)
    result = Trainer(args).train(keyword_examples(300, 0), [], "h")
    monkeypatch.undo()

    trust = result.trust["intent"]
    assert trust.n == 60
    assert trust.faithful is False, trust
    assert result.warnings and "not faithful for task 'intent'" in result.warnings[0]
    metrics = json.loads((directory / "metrics.json").read_text())
    assert metrics["faithfulness"]["intent"]["faithful"] is False
    assert "**Attention not faithful for intent**" in (directory / "README.md").read_text()
    assert read_info(directory).attention_faithful["intent"] is False

    classifier = AttentionTextClassifier(directory, "cpu")
    event = ChatEvent(
        message_id="m1",
        conversation_id="c1",
        channel="web",
        role="customer",
        text="please refund me",
        ts=datetime(2026, 11, 26, tzinfo=UTC),
    )
    record = SourceRecord("chat", 0, 1, b"c1", b"{}", 1_700_000_000_000)
    (prediction,) = classifier.predict([event.text])
    enriched = enrich(event, record, prediction, classifier.info, datetime.now(UTC), 1.0)
    assert enriched.intent is not None and enriched.intent.attention_faithful is False

    link = tmp_path / "serving"
    promoted = CliRunner().invoke(
        app, ["--model-dir", str(link), "model", "promote", str(directory)]
    )
    assert promoted.exit_code == 0, promoted.output
    assert "attention not faithful for intent" in promoted.stderr


@pytest.mark.slow
def test_learned_attention_on_a_keyword_task_clears_random(tmp_path) -> None:
    """The same data with the attention free to learn: the keyword carries the weight."""
    directory = tmp_path / "learned"
    args = tiny_args(directory, epochs=4, val_fraction=0.3, faithfulness_sample=60)
    result = Trainer(args).train(keyword_examples(300, 0), [], "h")
    trust = result.trust["intent"]
    assert trust.vs_random is not None and trust.vs_random >= 2.0, trust
    assert json.loads((directory / "metrics.json").read_text())["faithfulness_sample"] == 60


def test_no_sample_means_not_measured_and_the_card_says_so(tmp_path) -> None:
    directory = tmp_path / "skipped"
    args = tiny_args(directory, epochs=1, val_fraction=0.3, faithfulness_sample=0)
    result = Trainer(args).train(keyword_examples(60, 1), [], "h")
    assert result.trust == {} and result.warnings == []
    assert (
        "the shading of this model's words is unverified" in (directory / "README.md").read_text()
    )
    assert read_info(directory).attention_faithful == {}


@pytest.mark.slow
def test_failing_attention_is_trained_again_with_the_penalty(tmp_path, monkeypatch) -> None:
    """The default retry: a first run that fails the bar is replaced by one with the penalty."""
    from models.training import trainer as trainer_module
    from models.training.trust import TaskTrust

    penalties: list[float] = []
    real = trainer_module.measure_trust

    def verdict_by_penalty(model, tokenizer, examples, tasks, max_length, **kw):  # type: ignore[no-untyped-def]
        measured = real(model, tokenizer, examples, tasks, max_length, **kw)
        penalty = penalties[-1]
        return {  # the first run fails, whatever the tiny model learnt
            t: TaskTrust(**{**m.to_dict(), "faithful": penalty > 0, "reason": f"p={penalty}"})
            for t, m in measured.items()
        }

    original_once = trainer_module.Trainer._train_once

    def once(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        penalties.append(self.args.attention_entropy)
        return original_once(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "measure_trust", verdict_by_penalty)
    monkeypatch.setattr(trainer_module.Trainer, "_train_once", once)
    directory = tmp_path / "retried"
    args = tiny_args(directory, epochs=1, val_fraction=0.3, faithfulness_sample=30)
    result = Trainer(args).train(keyword_examples(90, 2), keyword_examples(9, 3), "h")

    assert penalties == [0.0, 0.3]
    assert result.trust["intent"].faithful is True and result.warnings == []
    metrics = json.loads((directory / "metrics.json").read_text())
    first = metrics["first_attempt"]
    assert first["attention_entropy"] == 0.0
    assert first["faithfulness"]["intent"]["faithful"] is False
    assert "intent" in first["test"]
    card = (directory / "README.md").read_text()
    assert "attention-entropy penalty 0.3 (not 0.0)" in card and "p=0.0" in card

    penalties.clear()
    off = tiny_args(
        tmp_path / "off", epochs=1, faithfulness_sample=30, faithfulness_retry_entropy=0
    )
    assert Trainer(off).train(keyword_examples(90, 2), [], "h").warnings
    assert penalties == [0.0]
