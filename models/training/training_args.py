"""Typed training arguments; wrong values fail fast with a clear ValueError."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainingArgs:
    """How to train an :class:`~models.modeling.AttentionClassifier`."""

    output_dir: Path
    #: Hugging Face id or local path of the encoder (and its tokenizer); ``None`` = MiniLM.
    encoder: str | None = None
    #: Build the encoder randomly from this config instead of loading weights (tests).
    random_encoder_config: dict[str, Any] | None = None
    #: Keep only this many of the encoder's transformer layers (the bottom ones, see
    #: ``models.fast.layers``) for a smaller, faster student; None = all.  Must be >= 1 and at
    #: most the encoder's layer count (checked here for ``random_encoder_config``, and when
    #: the encoder is loaded, before training starts, otherwise).
    encoder_layers: int | None = None
    name: str = "attnwatch-default"
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 8e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    #: Layer-wise LR decay for the encoder (1.0 = plain fine-tuning).
    layer_decay: float = 1.0
    warmup_ratio: float = 0.1
    label_smoothing: float = 0.1
    #: Weight of an attention-entropy penalty: > 0 makes the pooling heads' weights
    #: peakier, so the logged words carry more of the decision (0 = off).
    attention_entropy: float = 0.0
    dropout: float = 0.1
    num_heads: int = 1
    max_length: int = 128
    #: Batches are formed from groups of this many batches sorted by length, so they
    #: hold texts of similar length and pad less (1 = plain shuffled batches).
    length_group: int = 50
    seed: int = 0
    #: Seed of the validation split (None = ``seed``): members of an ensemble trained with
    #: different seeds keep one validation set, so none of them trains on another's.
    split_seed: int | None = None
    #: Share of the training data held out (stratified) for early stopping and calibration.
    val_fraction: float = 0.1
    #: Average the weights of the last N epochs (N >= 2 to take effect); the mean is kept
    #: only if it beats the best single epoch on validation (0 = off).
    average_last: int = 0
    #: Saved models whose averaged soft labels the student also learns (distillation).
    teachers: tuple[Path, ...] = ()
    #: Share of each task's loss given to the teachers' soft labels (1 = ignore gold labels).
    distill_weight: float = 0.5
    #: Softmax temperature of teacher and student in the distillation term.
    distill_temperature: float = 2.0
    #: Perturbed copies of each training example (words dropped and swapped) that learn only
    #: the teachers' soft labels (``models.training.transfer``); 0 = none.  Needs teachers.
    augment_copies: int = 0
    #: Epochs without a better validation macro-F1 before stopping (0 = never stop early).
    patience: int = 2
    #: Only these tasks are trained (None = every task that has labels).
    tasks: tuple[str, ...] | None = None
    #: Continue from ``output_dir/checkpoint`` if a previous run left one.
    resume: bool = False
    #: Coverage kept above the unknown-intent threshold when validation has no OOS examples.
    unknown_coverage: float = 0.97
    #: Validation texts per task on which training measures its attention's faithfulness
    #: (``models.training.trust``); 0 = skip (the card then says the shading is unverified).
    faithfulness_sample: int = 200
    #: If a task's attention fails the faithfulness bar, train again from scratch with this
    #: attention-entropy penalty (when it is above ``attention_entropy``; 0 = never retry).
    faithfulness_retry_entropy: float = 0.3
    device: str = "auto"
    progress: bool = True
    extra_card_notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def validation_seed(self) -> int:
        """The seed the validation split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.head_learning_rate > 0, "head_learning_rate must be > 0"),
            (
                0 <= self.warmup_ratio < 1,
                f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}",
            ),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.attention_entropy >= 0, "attention_entropy must be >= 0"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (0 < self.layer_decay <= 1, f"layer_decay must be in (0, 1], got {self.layer_decay}"),
            (
                0 <= self.val_fraction < 1,
                f"val_fraction must be in [0, 1), got {self.val_fraction}",
            ),
            (self.average_last >= 0, f"average_last must be >= 0, got {self.average_last}"),
            (0 <= self.distill_weight <= 1, "distill_weight must be in [0, 1]"),
            (self.distill_temperature > 0, "distill_temperature must be > 0"),
            (self.augment_copies >= 0, f"augment_copies must be >= 0, got {self.augment_copies}"),
            (
                self.augment_copies == 0 or bool(self.teachers),
                "augment_copies needs teachers: the copies learn only their soft labels",
            ),
            (self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (0 < self.unknown_coverage <= 1, "unknown_coverage must be in (0, 1]"),
            (self.faithfulness_sample >= 0, "faithfulness_sample must be >= 0"),
            (self.faithfulness_retry_entropy >= 0, "faithfulness_retry_entropy must be >= 0"),
            (self.length_group >= 1, f"length_group must be >= 1, got {self.length_group}"),
            (self.num_heads >= 1, f"num_heads must be >= 1, got {self.num_heads}"),
            (8 <= self.max_length <= 512, f"max_length must be in [8, 512], got {self.max_length}"),
        ]
        if self.encoder_layers is not None:
            depth = (self.random_encoder_config or {}).get("num_hidden_layers")
            most = "the encoder's layer count" if depth is None else f"the encoder's {depth} layers"
            fits = depth is None or self.encoder_layers <= int(depth)
            checks.append(
                (
                    self.encoder_layers >= 1 and fits,
                    f"encoder_layers must be between 1 and {most}, got {self.encoder_layers}",
                )
            )
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
