"""The transfer set: augmented copies and unlabelled texts that learn the teachers' soft labels."""

import json
import random

import pytest

from models.data.examples import Example
from models.evaluation.metrics import predict_labels
from models.saving import load_model
from models.training.trainer import Trainer
from models.training.transfer import (
    TEACHER_ONLY,
    augment,
    is_transfer,
    perturb,
    unlabelled,
)
from tests.support.model import tiny_args as shared_tiny_args


def tiny_args(path, **kw):
    return shared_tiny_args(path, **{"batch_size": 8, "max_length": 32, **kw})


def two_labels(n=2):
    return [Example(f"{label} {i}", {"intent": label}) for i in range(n) for label in ("a", "b")]


def test_augmented_copies_keep_tasks_not_labels_and_are_seeded():
    examples = [
        Example("my card was declined at the shop today", {"intent": "card", "sentiment": "neg"}),
        Example("refund arrived thanks a lot", {"intent": "refund"}, "chat"),
        Example("hi", {"intent": "greeting"}),
    ]
    copies = augment(examples, copies=4, seed=3)
    assert copies == augment(examples, copies=4, seed=3)  # seeded
    assert copies != augment(examples, copies=4, seed=4)
    assert 0 < len(copies) <= 4 * len(examples)
    by_text = {e.text: e for e in examples}
    for copy in copies:
        assert is_transfer(copy)
        assert set(copy.labels.values()) == {TEACHER_ONLY}
        assert copy.text not in by_text  # a copy equal to its source is left out
        assert any(
            copy.labels.keys() == e.labels.keys()
            and copy.group == e.group
            and all(
                copy.text.split().count(w) <= e.text.split().count(w) for w in copy.text.split()
            )
            for e in examples
        ), copy  # words of a source with the same tasks, dropped or swapped
    # "hi" cannot change (one word is always kept, nothing to swap): no copy of it
    assert all(c.text != "hi" for c in copies)
    assert any(c.group == "chat" for c in copies)
    assert augment(examples, copies=0) == []
    with pytest.raises(ValueError, match="copies must be >= 0"):
        augment(examples, copies=-1)


def test_perturb_keeps_a_word_and_only_the_texts_words():
    rng = random.Random(0)
    text = "the transfer to my savings account has not arrived"
    for _ in range(200):
        out = perturb(text, rng, drop=0.5, swap=0.5)
        assert out.split(), out
        assert all(w in text.split() for w in out.split())
    assert perturb("one two", random.Random(0), drop=1.0, swap=0.0) == "one"


def test_unlabelled_texts_name_their_tasks_and_transfer_needs_teachers(tmp_path):
    rows = unlabelled(["a turn", "  ", "another"], ["intent"], "stream")
    assert [r.text for r in rows] == ["a turn", "another"]
    assert all(r.labels == {"intent": TEACHER_ONLY} and r.group == "stream" for r in rows)
    assert not is_transfer(Example("x", {"intent": "card"}))
    with pytest.raises(ValueError, match="need the tasks"):
        unlabelled(["a"], [], "g")
    with pytest.raises(ValueError, match="augment_copies needs teachers"):
        tiny_args(tmp_path, augment_copies=1)
    with pytest.raises(ValueError, match="augment_copies must be >= 0"):
        tiny_args(tmp_path, augment_copies=-1, teachers=(tmp_path,))
    with pytest.raises(ValueError, match="need teachers"):
        Trainer(tiny_args(tmp_path, val_fraction=0)).train(two_labels(), [], "h", transfer=rows)


@pytest.mark.slow
def test_student_learns_the_teacher_on_unlabelled_texts(tmp_path):
    """The teacher's labels follow no word a student could read off its own labelled texts
    (the parity of an order number): only the unlabelled transfer texts, labelled by the
    teacher, teach the student them."""
    texts = [f"order {i} please" for i in range(40)]
    parity = [("card", "refund")[i % 2] for i in range(40)]
    teacher_rows = [Example(t, {"intent": label}) for t, label in zip(texts, parity, strict=True)]
    teacher_args = tiny_args(tmp_path / "teacher", epochs=12, val_fraction=0, name="teacher")
    teacher = Trainer(teacher_args).train(teacher_rows, [], "h").directory
    loaded = load_model(teacher)
    teacher_says = predict_labels(loaded.model, loaded.tokenizer, texts, "intent", 32)
    assert sum(a == b for a, b in zip(teacher_says, parity, strict=True)) >= 36  # it learnt

    # the student's gold labels are on other words entirely (both labels, so both are known)
    gold = [Example(f"alpha {i} zeta", {"intent": "card"}) for i in range(4)] + [
        Example(f"beta {i} omega", {"intent": "refund"}) for i in range(4)
    ]

    def student(name, transfer):
        args = tiny_args(tmp_path / name, epochs=12, val_fraction=0, teachers=(teacher,), seed=1)
        result = Trainer(args).train(gold, [], "h", transfer=transfer)
        model = load_model(result.directory)
        says = predict_labels(model.model, model.tokenizer, texts, "intent", 32)
        return result, sum(a == b for a, b in zip(says, teacher_says, strict=True)) / len(texts)

    taught, agreement = student("with", unlabelled(texts, ["intent"], "stream"))
    assert agreement >= 0.9, agreement
    metrics = json.loads((taught.directory / "metrics.json").read_text())
    assert metrics["n_transfer"] == len(texts) and metrics["n_train"] == len(gold)
    _, alone = student("without", [])
    assert alone <= 0.75, alone  # without the transfer texts: about chance
