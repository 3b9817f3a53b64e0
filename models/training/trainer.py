"""The training loop: multi-task fine-tuning with validation, early stopping and resume.

One encoder, one attention head per task; a batch's loss is the sum of the
cross-entropies of the tasks its examples are labelled for.  After each epoch
the validation split (carved stratified out of the training data unless given)
is scored by macro-F1; the best epoch's weights are kept, training stops after
``patience`` epochs without improvement, and a checkpoint (weights, optimiser,
schedule, progress) makes an interrupted run resumable.  The test split is only
ever used to report.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm
from transformers import AutoConfig, PreTrainedTokenizerBase

from models.classifier import resolve_device
from models.data.examples import Example
from models.encoding import default_encoder_path, encode, load_tokenizer, token_lengths
from models.evaluation.assess import add_test_report
from models.evaluation.calibration import Calibration, calibrate
from models.evaluation.metrics import TaskMetrics, evaluate, predict_logits
from models.fast.layers import keep_layers
from models.modeling import AttentionClassifier, TaskSpec
from models.saving import ModelInfo, save_model
from models.training.averaging import averaged_state, averaging_note, weight_average
from models.training.distillation import TeacherInfo, distillation_loss, teacher_probabilities
from models.training.model_card import metrics_dict, render_card
from models.training.optim import build_optimizer
from models.training.regularization import attention_entropy
from models.training.sampling import batch_order
from models.training.splits import restrict, split_validation, tasks_from
from models.training.state import Progress as _Progress
from models.training.state import cpu_state as _cpu_state
from models.training.state import load_checkpoint as _load_checkpoint
from models.training.state import save_best as _save_best
from models.training.state import save_checkpoint as _save_checkpoint
from models.training.training_args import TrainingArgs
from models.training.transfer import TEACHER_ONLY, augment
from models.training.trust import TaskTrust, measure_trust, warnings_for

log = logging.getLogger(__name__)

IGNORE = -100
INTENT = "intent"


@dataclass
class TrainResult:
    """What training produced."""

    info: ModelInfo
    directory: Path
    metrics: dict[str, dict[str, TaskMetrics]]
    seconds: float
    losses: list[float]
    history: list[dict[str, float]] = field(default_factory=list)
    calibration: Calibration | None = None
    #: Each task's measured attention faithfulness (empty when not measured).
    trust: dict[str, TaskTrust] = field(default_factory=dict)
    #: When the model was trained twice: the first run (faithfulness, which failed the bar,
    #: test metrics, penalty and seconds), as recorded in metrics.json.
    first_attempt: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """What training must say loudly: each task whose attention failed the bar."""
        return warnings_for(self.trust)


def validation_score(metrics: dict[str, dict[str, TaskMetrics]]) -> float:
    """Mean macro-F1 over every (task, group): what early stopping maximises."""
    scores = [m.macro_f1 for groups in metrics.values() for m in groups.values()]
    return sum(scores) / len(scores) if scores else 0.0


class Trainer:
    """Fine-tunes an :class:`AttentionClassifier` on labelled examples and saves it."""

    def __init__(self, args: TrainingArgs) -> None:
        self.args = args
        #: Transfer examples of the last run (augmented copies and unlabelled texts).
        self.n_transfer = 0

    def _build(
        self, tasks: Sequence[TaskSpec]
    ) -> tuple[AttentionClassifier, PreTrainedTokenizerBase, str, list[int] | None]:
        """The model, its tokenizer, its encoder's source and its kept layers (None = all)."""
        source = self.args.encoder or str(default_encoder_path())
        tokenizer = load_tokenizer(source)
        if self.args.random_encoder_config is not None:
            config = dict(self.args.random_encoder_config)
            config.setdefault("vocab_size", len(tokenizer))
            model_type = config.pop("model_type", "bert")
            encoder_config = AutoConfig.for_model(model_type, **config)
            model = AttentionClassifier.from_config(encoder_config, tasks, self.args.dropout)
            source = f"random-init {model_type} (tokenizer {source})"
        else:
            model = AttentionClassifier.from_encoder(source, tasks, self.args.dropout)
        layers = self.args.encoder_layers
        kept = keep_layers(model.encoder, layers) if layers is not None else None
        return model, tokenizer, source, kept

    def train(
        self,
        train: Sequence[Example],
        test: Sequence[Example],
        data_hash: str,
        validation: Sequence[Example] | None = None,
        transfer: Sequence[Example] = (),
    ) -> TrainResult:
        """Train on ``train``, choose on validation, report on ``test``, save.

        ``transfer``: unlabelled texts for the teachers to label
        (:func:`models.training.transfer.unlabelled`); with ``augment_copies`` the
        training part's perturbed copies join them.  Both need ``teachers``.

        If a task's logged attention then fails the faithfulness bar
        (:mod:`models.training.trust`) and ``faithfulness_retry_entropy`` is above the
        penalty used, the model is trained once more from scratch with that penalty: the
        penalty works only from the first step (bench/RESULTS.md), so it cannot be added
        afterwards.  The saved model is the second one; its card says why.
        """
        result = self._train_once(train, test, data_hash, validation, transfer=transfer)
        retry = self.args.faithfulness_retry_entropy
        if not result.warnings or retry <= self.args.attention_entropy:
            return result
        failed = {t: v.reason for t, v in result.trust.items() if v.faithful is False}
        log.warning(
            "attention not faithful: training again with the attention-entropy penalty",
            extra={"failed": failed, "penalty": retry, "first_seconds": round(result.seconds)},
        )
        note = (
            f"- attention-entropy penalty {retry} (not {self.args.attention_entropy}): a first "
            f"run without it ({result.seconds:.0f} s) failed the faithfulness bar for "
            + "; ".join(f"{t} ({reason})" for t, reason in failed.items())
        )
        first_attempt = {
            "attention_entropy": self.args.attention_entropy,
            "train_seconds": result.seconds,
            "faithfulness": {task: t.to_dict() for task, t in result.trust.items()},
            "test": metrics_dict(result.metrics),
        }
        again = replace(
            self.args,
            attention_entropy=retry,
            resume=False,
            extra_card_notes=(*self.args.extra_card_notes, note),
        )
        return Trainer(again)._train_once(
            train, test, data_hash, validation, first_attempt, transfer=transfer
        )

    def _train_once(
        self,
        train: Sequence[Example],
        test: Sequence[Example],
        data_hash: str,
        validation: Sequence[Example] | None = None,
        first_attempt: dict[str, Any] | None = None,
        transfer: Sequence[Example] = (),
    ) -> TrainResult:
        """One training run; ``first_attempt`` is the failed run this one replaces, if any."""
        args = self.args
        train = restrict(train, args.tasks)
        test = restrict(test, args.tasks)
        if not train:
            msg = "no training examples (for the requested tasks)"
            raise ValueError(msg)
        if validation is None and args.val_fraction > 0:
            train, validation = split_validation(train, args.val_fraction, args.validation_seed)
        validation = restrict(validation or [], args.tasks)
        torch.manual_seed(args.seed)
        tasks = tasks_from(train, args.num_heads)
        # transfer rows come after the split (no copy of a validation text trains) and after
        # the tasks (their TEACHER_ONLY label is no class)
        extra = [*augment(train, args.augment_copies, args.seed), *restrict(transfer, args.tasks)]
        if extra and not args.teachers:
            msg = "transfer texts (augment_copies, unlabelled texts) need teachers to label them"
            raise ValueError(msg)
        self.n_transfer = len(extra)
        fit = [*train, *extra]
        model, tokenizer, source, kept_layers = self._build(tasks)
        # made before the model moves, so the averaged copy never takes accelerator memory
        average = weight_average(model) if args.average_last >= 2 else None
        device = resolve_device(args.device)
        model.to(device)
        steps_per_epoch = (len(fit) + args.batch_size - 1) // args.batch_size
        optimizer, scheduler = build_optimizer(model, args, steps_per_epoch * args.epochs)
        progress = _Progress()
        checkpoint = args.output_dir / "checkpoint"
        if args.resume and (checkpoint / "state.pt").is_file():
            try:
                progress = _load_checkpoint(checkpoint, model, optimizer, scheduler)
            except RuntimeError as exc:  # load_state_dict: missing, unexpected or resized keys
                msg = (
                    f"{checkpoint} was written for another model (encoder, encoder_layers or "
                    f"tasks differ): resume with the same settings or delete it ({exc})"
                )
                raise ValueError(msg) from exc
        best_state = _cpu_state(model)
        if (checkpoint / "best.pt").is_file() and args.resume:
            best_state = torch.load(checkpoint / "best.pt", weights_only=True)
        if average is not None and progress.average_state is not None:
            average.load_state_dict(progress.average_state)

        lengths = token_lengths(tokenizer, [e.text for e in fit], args.max_length)
        soft, teachers = self._teach(fit, tasks, device)
        loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=args.label_smoothing)
        index = {t.name: {label: i for i, label in enumerate(t.labels)} for t in tasks}
        bar = tqdm(
            total=steps_per_epoch * args.epochs,
            initial=steps_per_epoch * progress.epoch,
            desc="training",
            unit="step",
            disable=not args.progress,
        )
        for epoch in range(progress.epoch, args.epochs):
            started = time.perf_counter()
            model.train()
            for batch_indices in batch_order(
                lengths, args.batch_size, args.seed * 10_007 + epoch, args.length_group
            ):
                rows = [fit[i] for i in batch_indices]
                batch = encode(tokenizer, [r.text for r in rows], args.max_length).to(device)
                outputs = model(batch.input_ids, batch.attention_mask, batch.pool_mask)
                loss = torch.zeros((), device=device)
                for task in tasks:
                    values = [r.labels.get(task.name, "") for r in rows]
                    target = torch.tensor(
                        [index[task.name].get(v, IGNORE) for v in values], device=device
                    )
                    labelled = target != IGNORE
                    # distilled on the rows labelled for the task and its transfer rows
                    taught = labelled | torch.tensor(
                        [v == TEACHER_ONLY for v in values], device=device
                    )
                    if taught.any():
                        logits = outputs[task.name].logits
                        task_loss = (
                            loss_fn(logits, target)
                            if labelled.any()
                            else torch.zeros((), device=device)
                        )
                        if task.name in soft:
                            taught_probs = soft[task.name][batch_indices][taught]
                            task_loss = (1 - args.distill_weight) * task_loss + (
                                args.distill_weight
                                * distillation_loss(
                                    logits[taught], taught_probs, args.distill_temperature
                                )
                            )
                        loss = loss + task_loss
                    if args.attention_entropy:
                        loss = loss + args.attention_entropy * attention_entropy(
                            outputs[task.name].attention
                        )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                progress.losses.append(float(loss.detach()))
                bar.update(1)
                recent = progress.losses[-20:]
                bar.set_postfix(
                    loss=f"{sum(recent) / len(recent):.3f}", best=f"{progress.best:.3f}"
                )
            progress.seconds += time.perf_counter() - started
            score = (
                validation_score(evaluate(model, tokenizer, validation, args.max_length))
                if validation
                else float(epoch)  # no validation: the last epoch is the best
            )
            progress.history.append(
                {"epoch": epoch + 1, "val_macro_f1": score, "loss": sum(recent) / len(recent)}
            )
            progress.epoch = epoch + 1
            if score > progress.best:
                progress.best, progress.best_epoch, progress.stale = score, epoch + 1, 0
                best_state = _cpu_state(model)
                _save_best(checkpoint, best_state)
            else:
                progress.stale += 1
            if average is not None and epoch + 1 > args.epochs - args.average_last:
                average.update_parameters(model)
                progress.average_state = average.state_dict()
            _save_checkpoint(checkpoint, model, optimizer, scheduler, progress)
            if args.patience and validation and progress.stale >= args.patience:
                break
        bar.close()
        if average is not None and int(average.n_averaged) >= 2 and validation:
            best_state = self._maybe_average(
                model, tokenizer, validation, average, best_state, progress
            )
        model.load_state_dict(best_state)
        model.eval()
        calibration = self._calibrate(model, tokenizer, validation, tasks)
        trust = (
            measure_trust(
                model,
                tokenizer,
                validation,
                [t.name for t in tasks],
                args.max_length,
                sample=args.faithfulness_sample,
                seed=args.seed,
                progress=args.progress,
            )
            if args.faithfulness_sample
            else {}
        )
        metrics = evaluate(model, tokenizer, test, args.max_length) if test else {}
        result = self._save(
            model,
            tokenizer,
            source,
            data_hash,
            train,
            test,
            validation,
            metrics,
            progress,
            calibration,
            teachers,
            kept_layers,
            trust,
            first_attempt,
        )
        shutil.rmtree(checkpoint, ignore_errors=True)
        if test:
            add_test_report(result.directory, test, args.device)
        return result

    def _teach(
        self, train: Sequence[Example], tasks: Sequence[TaskSpec], device: torch.device
    ) -> tuple[dict[str, torch.Tensor], list[TeacherInfo]]:
        """The teachers' soft labels of every training text, per task (none without teachers)."""
        if not self.args.teachers:
            return {}, []
        soft, teachers = teacher_probabilities(
            self.args.teachers,
            [e.text for e in train],
            {t.name: t.labels for t in tasks},
            self.args.distill_temperature,
            device,
            self.args.progress,
        )
        return {task: probs.to(device) for task, probs in soft.items()}, teachers

    def _maybe_average(
        self,
        model: AttentionClassifier,
        tokenizer: PreTrainedTokenizerBase,
        validation: Sequence[Example],
        average: AveragedModel,
        best_state: dict[str, torch.Tensor],
        progress: _Progress,
    ) -> dict[str, torch.Tensor]:
        """The averaged weights if they beat the best epoch on validation, else ``best_state``."""
        averaged = averaged_state(average)
        model.load_state_dict(averaged)
        score = validation_score(evaluate(model, tokenizer, validation, self.args.max_length))
        progress.averaged_score = score
        if score > progress.best:
            progress.best, progress.averaged_chosen = score, True
            return averaged
        return best_state

    def _calibrate(
        self,
        model: AttentionClassifier,
        tokenizer: PreTrainedTokenizerBase,
        validation: Sequence[Example],
        tasks: Sequence[TaskSpec],
    ) -> Calibration | None:
        """Temperature and unknown-intent threshold, fitted on validation only.

        Validation rows whose intent the model was not trained on (``oos``, or an intent
        held out entirely) are out of scope: they set the threshold and nothing else.
        Fewer than 10 in-scope rows: no calibration.
        """
        intent = next((t for t in tasks if t.name == INTENT), None)
        if intent is None:
            return None
        known = {label: i for i, label in enumerate(intent.labels)}
        rows = [e for e in validation if INTENT in e.labels]
        if sum(e.labels[INTENT] in known for e in rows) < 10:
            return None
        logits = predict_logits(
            model, tokenizer, [e.text for e in rows], INTENT, self.args.max_length
        )
        is_oos = torch.tensor([e.labels[INTENT] not in known for e in rows])
        labels = torch.tensor([known.get(e.labels[INTENT], 0) for e in rows])
        return calibrate(
            logits,
            labels,
            is_oos if bool(is_oos.any()) else None,
            target_coverage=self.args.unknown_coverage,
        )

    def _save(
        self,
        model: AttentionClassifier,
        tokenizer: PreTrainedTokenizerBase,
        source: str,
        data_hash: str,
        train: Sequence[Example],
        test: Sequence[Example],
        validation: Sequence[Example],
        metrics: dict[str, dict[str, TaskMetrics]],
        progress: _Progress,
        calibration: Calibration | None,
        teachers: Sequence[TeacherInfo] = (),
        kept_layers: Sequence[int] | None = None,
        trust: dict[str, TaskTrust] | None = None,
        first_attempt: dict[str, Any] | None = None,
    ) -> TrainResult:
        args = self.args
        created = datetime.now(UTC).isoformat(timespec="seconds")
        card = render_card(
            name=args.name,
            version_note="version: the first 12 hex digits of model.safetensors' SHA-256",
            args=args,
            encoder_source=source,
            data_hash=data_hash,
            n_train=len(train),
            n_test=len(test),
            metrics=metrics,
            train_seconds=progress.seconds,
            created_at=created,
            labels={t.name: t.labels for t in model.tasks.values()},
            n_validation=len(validation),
            history=progress.history,
            best_epoch=progress.best_epoch,
            calibration=calibration,
            distillation=_distillation_note(teachers, args),
            kept_layers=kept_layers,
            averaging=averaging_note(
                progress.averaged_score, progress.averaged_chosen, args.average_last
            ),
            trust=trust or {},
        )
        extra: dict[str, Any] = {
            "test": metrics_dict(metrics),
            "train_seconds": progress.seconds,
            "data_hash": data_hash,
            "n_train": len(train),
            "n_transfer": self.n_transfer,
            "augment_copies": args.augment_copies,
            "n_validation": len(validation),
            "n_test": len(test),
            "history": progress.history,
            "best_epoch": progress.best_epoch,
            "averaged_last": args.average_last if progress.averaged_chosen else 0,
            "averaged_val_macro_f1": progress.averaged_score,
            "teachers": [asdict(t) for t in teachers],
            "encoder_layers": args.encoder_layers,
            "encoder_layers_kept": None if kept_layers is None else list(kept_layers),
            "faithfulness": {task: t.to_dict() for task, t in (trust or {}).items()},
            "faithfulness_sample": args.faithfulness_sample,
            "first_attempt": first_attempt,
        }
        info = save_model(
            model,
            tokenizer,
            args.output_dir,
            name=args.name,
            max_length=args.max_length,
            encoder_source=source,
            created_at=created,
            card=card,
            metrics=extra,
            calibration=calibration.to_dict() if calibration else None,
        )
        return TrainResult(
            info,
            args.output_dir,
            metrics,
            progress.seconds,
            progress.losses,
            progress.history,
            calibration,
            dict(trust or {}),
            first_attempt or {},
        )


def _distillation_note(teachers: Sequence[TeacherInfo], args: TrainingArgs) -> str | None:
    if not teachers:
        return None
    names = ", ".join(f"{t.name}@{t.version}" for t in teachers)
    return (
        f"distilled from {len(teachers)} teacher(s) ({names}): soft-label weight "
        f"{args.distill_weight}, temperature {args.distill_temperature}"
    )
