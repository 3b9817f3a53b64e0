"""Knowledge distillation: a student learns the averaged soft labels of saved teachers.

An ensemble of fine-tuned models is usually more accurate than any one of them,
but serving several encoders multiplies the cost of every message.  Training one
student on the ensemble's softened probabilities (Hinton et al. 2015) keeps most
of the gain at the cost of one model.  The loss of a task becomes

    (1 - w) * CE(student, gold) + w * T^2 * KL(p_teacher^T || p_student^T)

where ``p^T`` is the softmax of logits divided by the temperature ``T``; the
``T^2`` keeps the gradient scale of the soft term independent of ``T``.

Teachers are saved attnwatch models.  Each one reads the training texts with its
own tokenizer and maximum length, so a teacher may have a different (larger)
encoder than the student.  Their probabilities are computed once, before the
first epoch, and averaged over teachers in the student's label order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.evaluation.metrics import predict_logits
from models.saving import load_model


@dataclass(frozen=True)
class TeacherInfo:
    """Which saved model taught the student (recorded in the student's card)."""

    directory: str
    name: str
    version: str


def teacher_probabilities(
    teachers: Sequence[Path],
    texts: Sequence[str],
    labels: dict[str, tuple[str, ...]],
    temperature: float,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], list[TeacherInfo]]:
    """Mean tempered probabilities [N, C] per task, in the student's label order.

    ``labels`` maps each task the student trains to its labels.  Every teacher
    must know the task with exactly the same set of labels (the order may
    differ); otherwise a :class:`ValueError` says which teacher and labels.
    Tasks no teacher has are simply not distilled.
    """
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    infos: list[TeacherInfo] = []
    for directory in tqdm(teachers, desc="teachers", unit="model", disable=not progress):
        loaded = load_model(directory, device)
        infos.append(TeacherInfo(str(directory), loaded.info.name, loaded.info.version))
        for task, student_labels in labels.items():
            spec = loaded.model.tasks.get(task)
            if spec is None:
                continue
            if set(spec.labels) != set(student_labels):
                missing = sorted(set(student_labels) - set(spec.labels))
                extra = sorted(set(spec.labels) - set(student_labels))
                msg = (
                    f"teacher {directory} has other {task} labels than the training data "
                    f"(missing {missing[:5]}, extra {extra[:5]})"
                )
                raise ValueError(msg)
            logits = predict_logits(
                loaded.model, loaded.tokenizer, texts, task, loaded.info.max_length
            )
            order = torch.tensor([spec.labels.index(label) for label in student_labels])
            probs = F.softmax(logits[:, order] / temperature, dim=-1)
            sums[task] = probs if task not in sums else sums[task] + probs
            counts[task] = counts.get(task, 0) + 1
        del loaded
    return {task: total / counts[task] for task, total in sums.items()}, infos


def distillation_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(teacher || softmax(student / T))``, averaged over the batch."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * temperature**2
