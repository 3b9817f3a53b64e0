"""The training loop: joint multi-task fine-tuning of encoder and heads."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, PreTrainedTokenizerBase

from models.classifier import resolve_device
from models.encoding import default_encoder_path, encode, load_tokenizer
from models.evaluation import Example, TaskMetrics, evaluate
from models.model_card import metrics_dict, render_card
from models.modeling import AttentionClassifier, TaskSpec
from models.saving import ModelInfo, save_model
from models.training_args import TrainingArgs

IGNORE = -100


@dataclass
class TrainResult:
    """What training produced."""

    info: ModelInfo
    directory: Path
    metrics: dict[str, dict[str, TaskMetrics]]
    seconds: float
    losses: list[float]


def tasks_from(examples: Sequence[Example]) -> list[TaskSpec]:
    """One task per label key, labels sorted for a stable label map."""
    names = sorted({task for e in examples for task in e.labels})
    return [
        TaskSpec(n, tuple(sorted({e.labels[n] for e in examples if n in e.labels}))) for n in names
    ]


class Trainer:
    """Fine-tunes an :class:`AttentionClassifier` on labelled examples and saves it."""

    def __init__(self, args: TrainingArgs) -> None:
        self.args = args

    def _build(
        self, tasks: Sequence[TaskSpec]
    ) -> tuple[AttentionClassifier, PreTrainedTokenizerBase, str]:
        source = self.args.encoder or str(default_encoder_path())
        tokenizer = load_tokenizer(source)
        if self.args.random_encoder_config is not None:
            config = dict(self.args.random_encoder_config)
            config.setdefault("vocab_size", len(tokenizer))
            model_type = config.pop("model_type", "bert")
            encoder_config = AutoConfig.for_model(model_type, **config)
            model = AttentionClassifier.from_config(encoder_config, tasks, self.args.dropout)
            return model, tokenizer, f"random-init {model_type} (tokenizer {source})"
        return AttentionClassifier.from_encoder(source, tasks, self.args.dropout), tokenizer, source

    def train(
        self,
        train: Sequence[Example],
        test: Sequence[Example],
        data_hash: str,
    ) -> TrainResult:
        """Train on ``train``, report on ``test`` (never used for any choice), save."""
        args = self.args
        if not train:
            msg = "no training examples"
            raise ValueError(msg)
        random.seed(args.seed)
        torch.manual_seed(args.seed)
        tasks = tasks_from(train)
        model, tokenizer, source = self._build(tasks)
        device = resolve_device(args.device)
        model.to(device)
        index = {t.name: {label: i for i, label in enumerate(t.labels)} for t in tasks}

        head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        optimizer = torch.optim.AdamW(
            [
                {"params": list(model.encoder.parameters()), "lr": args.learning_rate},
                {"params": head_params, "lr": args.head_learning_rate},
            ],
            weight_decay=args.weight_decay,
        )
        steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
        total = steps_per_epoch * args.epochs
        warmup = max(1, int(total * args.warmup_ratio))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=args.label_smoothing)
        order = list(range(len(train)))
        losses: list[float] = []
        started = time.perf_counter()
        model.train()
        bar = tqdm(total=total, desc="training", unit="step", disable=not args.progress)
        for _epoch in range(args.epochs):
            random.shuffle(order)
            for start in range(0, len(order), args.batch_size):
                rows = [train[i] for i in order[start : start + args.batch_size]]
                batch = encode(tokenizer, [r.text for r in rows], args.max_length).to(device)
                outputs = model(batch.input_ids, batch.attention_mask, batch.pool_mask)
                loss = torch.zeros((), device=device)
                for task in tasks:
                    target = torch.tensor(
                        [index[task.name].get(r.labels.get(task.name, ""), IGNORE) for r in rows],
                        device=device,
                    )
                    if (target != IGNORE).any():
                        loss = loss + loss_fn(outputs[task.name].logits, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        bar.close()
        seconds = time.perf_counter() - started
        model.eval()
        metrics = evaluate(model, tokenizer, test, args.max_length) if test else {}
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
            train_seconds=seconds,
            created_at=created,
            labels={t.name: t.labels for t in tasks},
        )
        info = save_model(
            model,
            tokenizer,
            args.output_dir,
            name=args.name,
            max_length=args.max_length,
            encoder_source=source,
            created_at=created,
            card=card,
            metrics={
                "test": metrics_dict(metrics),
                "train_seconds": seconds,
                "data_hash": data_hash,
                "n_train": len(train),
                "n_test": len(test),
            },
        )
        return TrainResult(info, args.output_dir, metrics, seconds, losses)
