"""The network: a transformer encoder with one attention-pooling head per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from models.attention import AttentionPooling
from models.weight_files import refuse_pickle_weights


@dataclass(frozen=True)
class TaskSpec:
    """A classification task: its name, its labels and its pooling heads."""

    name: str
    labels: tuple[str, ...]
    num_heads: int = 1

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            msg = f"task {self.name!r} needs at least two labels, got {list(self.labels)}"
            raise ValueError(msg)
        if len(set(self.labels)) != len(self.labels):
            msg = f"task {self.name!r} has duplicate labels"
            raise ValueError(msg)


@dataclass
class TaskOutput:
    """Logits [B, C] and attention weights [B, heads, T] of one task."""

    logits: torch.Tensor
    attention: torch.Tensor


class TaskHead(nn.Module):
    """Attention pooling followed by a linear classifier."""

    def __init__(self, hidden_size: int, spec: TaskSpec, dropout: float) -> None:
        super().__init__()
        self.pool = AttentionPooling(hidden_size, num_heads=spec.num_heads)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, len(spec.labels))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> TaskOutput:
        """Classify from the token states where ``mask`` is true."""
        pooled, alpha = self.pool(states, mask)
        return TaskOutput(self.classifier(self.dropout(pooled)), alpha)


class AttentionClassifier(nn.Module):
    """Shared encoder, one :class:`TaskHead` per task (intent, sentiment, ...)."""

    def __init__(
        self, encoder: PreTrainedModel, tasks: Sequence[TaskSpec], dropout: float = 0.1
    ) -> None:
        super().__init__()
        if not tasks:
            msg = "at least one task is needed"
            raise ValueError(msg)
        self.encoder = encoder
        self.tasks = {spec.name: spec for spec in tasks}
        hidden = int(encoder.config.hidden_size)
        self.heads = nn.ModuleDict({spec.name: TaskHead(hidden, spec, dropout) for spec in tasks})

    @classmethod
    def from_encoder(
        cls, name_or_path: str, tasks: Sequence[TaskSpec], dropout: float = 0.1
    ) -> AttentionClassifier:
        """Start from a pretrained encoder (a Hugging Face id or a local directory).

        Only safetensors weights are read (``use_safetensors=True``: transformers never
        unpickles ``pytorch_model.bin``); a local directory whose weights are only pickles
        raises :class:`~models.weight_files.ModelFormatError` naming them.
        """
        if Path(name_or_path).is_dir():
            refuse_pickle_weights(Path(name_or_path), allow_beside_safetensors=True)
        encoder = AutoModel.from_pretrained(name_or_path, use_safetensors=True)
        return cls(encoder, tasks, dropout)

    @classmethod
    def from_config(
        cls, config: PretrainedConfig, tasks: Sequence[TaskSpec], dropout: float = 0.1
    ) -> AttentionClassifier:
        """Build with a randomly initialised encoder (loading weights happens after)."""
        return cls(AutoModel.from_config(config), tasks, dropout)  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pool_mask: torch.Tensor,
        tasks: Sequence[str] | None = None,
    ) -> Mapping[str, TaskOutput]:
        """Encode once, then run the requested heads (all by default).

        ``attention_mask`` marks real tokens for the encoder; ``pool_mask``
        marks the tokens the heads may attend to (real tokens less the
        special ones), so logged weights cover exactly the message's words.
        """
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        wanted = list(self.tasks) if tasks is None else list(tasks)
        return {name: self.heads[name](states, pool_mask) for name in wanted}
