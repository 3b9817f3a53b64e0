"""The limit: encoder + heads forward alone, what the model could do if the pipeline cost nothing.

Same units as the run loop (headline + body sentences per article, one text per chat, see
:func:`bench.harness.mix.unit_texts`), same truncation (the model's ``max_length``), same
tasks (every head the run loop asks for), but tokenised in advance, sorted by length so
padding is minimal, padded into tensors already on the device, and run under
``torch.inference_mode()``.  Nothing after the heads: no softmax, no copies to the CPU, no
word merging.  Several batch sizes are tried; the best is the limit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from models.modeling import AttentionClassifier
from models.saving import load_model
from models.torch_thread import on_torch_thread
from pipeline.stream.enrich import INTENT, SENTIMENT

from .mix import distribution


@dataclass(frozen=True)
class Batch:
    """Padded encoder inputs of one length-sorted batch, already on the device."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pool_mask: torch.Tensor


@dataclass(frozen=True)
class LimitResult:
    """Best throughput of the forward alone, and what each batch size gave."""

    messages: int
    units: int
    tokens: int
    padded_tokens: int
    batch_size: int
    seconds: float
    msg_per_s: float
    units_per_s: float
    msg_per_s_by_batch_size: dict[int, float]
    tokens_per_unit: dict[str, float]
    device: str
    #: 1-minute load average when done: about the harness's own threads if the machine was
    #: otherwise idle, more if something else ran meanwhile.
    load_avg: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def tokenise(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(input ids, special-token mask) per text, truncated as ``models.encoding.encode`` does."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, return_special_tokens_mask=True
    )
    return list(zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True))


def batches(
    rows: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    pad_id: int,
    device: torch.device,
) -> list[Batch]:
    """Sort by length, cut into batches, pad each to its own longest row."""
    ordered = sorted(rows, key=lambda row: len(row[0]))
    out: list[Batch] = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        special = torch.ones((len(chunk), width), dtype=torch.bool)
        for i, (row_ids, row_special) in enumerate(chunk):
            n = len(row_ids)
            ids[i, :n] = torch.tensor(row_ids, dtype=torch.long)
            attention[i, :n] = 1
            special[i, :n] = torch.tensor(row_special, dtype=torch.bool)
        pool = attention.bool() & ~special
        # As models.encoding.encode: a row with no ordinary token pools over its specials.
        empty = ~pool.any(dim=1)
        pool[empty] = attention[empty].bool()
        out.append(Batch(ids.to(device), attention.to(device), pool.to(device)))
    return out


def forward_all(
    model: AttentionClassifier, prepared: Sequence[Batch], tasks: Sequence[str]
) -> float:
    """Seconds to run every batch through the encoder and the heads."""
    device = prepared[0].input_ids.device if prepared else torch.device("cpu")
    with torch.inference_mode():
        started = time.perf_counter()
        for batch in prepared:
            model(batch.input_ids, batch.attention_mask, batch.pool_mask, tasks)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started


def measure_limit(
    model_dir: Path,
    per_message: Sequence[Sequence[str]],
    *,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (16, 64, 128),
    repeats: int = 2,
    progress: bool = True,
) -> LimitResult:
    """Forward every unit of every message at each batch size; the best one is the limit.

    Each batch size is timed ``repeats`` times, interleaved, and its fastest pass counts:
    on a shared machine the other passes measure the neighbours.  It runs on the process's
    torch thread (:mod:`models.torch_thread`), as the classifier of the naive side does: a
    second thread computing with torch would slow both.
    """
    return on_torch_thread(
        lambda: _measure(model_dir, per_message, device, batch_sizes, repeats, progress)
    )


def _measure(
    model_dir: Path,
    per_message: Sequence[Sequence[str]],
    device: str,
    batch_sizes: Sequence[int],
    repeats: int,
    progress: bool,
) -> LimitResult:
    if not batch_sizes or min(batch_sizes) < 1 or repeats < 1:
        msg = f"batch sizes and repeats must be >= 1, got {list(batch_sizes)}, {repeats}"
        raise ValueError(msg)
    target = torch.device(device)
    loaded = load_model(model_dir, target)
    present = {t.name for t in loaded.info.tasks}
    tasks = [t for t in (INTENT, SENTIMENT) if t in present]
    texts = [text for units in per_message for text in units]
    rows = tokenise(loaded.tokenizer, texts, loaded.info.max_length)
    pad_id = int(loaded.tokenizer.pad_token_id or 0)
    lengths = [len(ids) for ids, _ in rows]

    # Warm-up: the first forward of each shape allocates; not what is measured.
    warm = batches(rows[: max(batch_sizes)], max(batch_sizes), pad_id, target)
    forward_all(loaded.model, warm, tasks)

    prepared = {size: batches(rows, size, pad_id, target) for size in dict.fromkeys(batch_sizes)}
    padded = {size: sum(int(b.input_ids.numel()) for b in bs) for size, bs in prepared.items()}
    seconds = {size: math.inf for size in prepared}
    passes = [size for _ in range(repeats) for size in prepared]
    for size in tqdm(passes, desc="limit (forward alone)", unit="pass", disable=not progress):
        seconds[size] = min(seconds[size], forward_all(loaded.model, prepared[size], tasks))
    by_size = {size: len(per_message) / seconds[size] for size in prepared}
    best = max(by_size, key=by_size.__getitem__)
    return LimitResult(
        messages=len(per_message),
        units=len(texts),
        tokens=sum(lengths),
        padded_tokens=padded[best],
        batch_size=best,
        seconds=seconds[best],
        msg_per_s=by_size[best],
        units_per_s=len(texts) / seconds[best],
        msg_per_s_by_batch_size=by_size,
        tokens_per_unit=distribution(lengths),
        device=str(target),
        load_avg=os.getloadavg()[0],
    )
