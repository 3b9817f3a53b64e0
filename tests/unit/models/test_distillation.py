"""Knowledge distillation: the soft-label loss, teacher averaging, and a student that follows it."""

import json

import pytest
import torch
import torch.nn.functional as F

from models.data.examples import Example
from models.evaluation.metrics import predict_labels, predict_logits
from models.saving import load_model
from models.training.distillation import distillation_loss, teacher_probabilities
from models.training.trainer import Trainer
from tests.support.model import tiny_args as shared_tiny_args


def tiny_args(path, **kw):
    return shared_tiny_args(path, **{"batch_size": 8, "max_length": 32, **kw})


def rows(n=12, swap=False):
    card, refund = ("refund", "card") if swap else ("card", "refund")
    out = []
    for i in range(n):
        out.append(Example(f"card {i} declined again", {"intent": card}))
        out.append(Example(f"refund {i} arrived thanks", {"intent": refund}))
    return out


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    directory = tmp_path_factory.mktemp("teacher")
    args = tiny_args(directory, epochs=8, val_fraction=0, name="teacher")
    return Trainer(args).train(rows(), [], "h").directory


def test_loss_is_tempered_kl_times_t_squared():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    t = 3.0
    q = F.softmax(student / t, dim=-1)
    expected = t**2 * (teacher * (teacher.log() - q.log())).sum(dim=-1).mean()
    assert float(distillation_loss(student, teacher, t)) == pytest.approx(float(expected))
    matching = F.softmax(student / t, dim=-1)
    assert float(distillation_loss(student, matching, t)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_teacher_probabilities_average_in_the_students_label_order(teacher, tmp_path):
    texts = ["card 3 declined again", "refund 5 arrived thanks"]
    loaded = load_model(teacher)
    labels = loaded.model.tasks["intent"].labels
    logits = predict_logits(loaded.model, loaded.tokenizer, texts, "intent", 32)
    reversed_labels = tuple(reversed(labels))
    soft, infos = teacher_probabilities(
        [teacher, teacher], texts, {"intent": reversed_labels}, 2.0, progress=False
    )
    expected = F.softmax(logits / 2.0, dim=-1).flip(-1)
    assert torch.allclose(soft["intent"], expected, atol=1e-6)
    assert [i.version for i in infos] == [loaded.info.version] * 2

    with pytest.raises(ValueError, match="other intent labels"):
        teacher_probabilities([teacher], texts, {"intent": ("card", "lost")}, 2.0, progress=False)
    # a task the teachers do not have is not distilled
    soft, _ = teacher_probabilities(
        [teacher], texts, {"sentiment": ("a", "b")}, 2.0, progress=False
    )
    assert soft == {}


@pytest.mark.slow
def test_student_follows_the_teacher_by_its_weight(teacher, tmp_path):
    """Gold labels swapped: weight 1 learns the teacher's labels, weight 0 the gold ones."""
    texts = [e.text for e in rows(6)]
    loaded = load_model(teacher)
    teacher_says = predict_labels(loaded.model, loaded.tokenizer, texts, "intent", 32)
    assert teacher_says == [e.labels["intent"] for e in rows(6)]  # the teacher learnt its task

    def student(weight):
        args = tiny_args(
            tmp_path / f"w{weight}",
            epochs=8,
            val_fraction=0,
            teachers=(teacher,),
            distill_weight=weight,
        )
        result = Trainer(args).train(rows(swap=True), [], "h")
        model = load_model(result.directory)
        return result, predict_labels(model.model, model.tokenizer, texts, "intent", 32)

    taught, says = student(1.0)
    assert sum(a == b for a, b in zip(says, teacher_says, strict=True)) >= 0.9 * len(texts)
    metrics = json.loads((taught.directory / "metrics.json").read_text())
    assert metrics["teachers"][0]["version"] == loaded.info.version
    assert "knowledge distillation" in (taught.directory / "README.md").read_text()

    _, gold_only = student(0.0)
    assert sum(a != b for a, b in zip(gold_only, teacher_says, strict=True)) >= 0.9 * len(texts)


def test_bad_distillation_settings_fail_fast(tmp_path):
    with pytest.raises(ValueError, match="distill_weight"):
        tiny_args(tmp_path, distill_weight=1.5)
    with pytest.raises(ValueError, match="distill_temperature"):
        tiny_args(tmp_path, distill_temperature=0)
