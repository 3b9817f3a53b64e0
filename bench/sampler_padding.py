"""Batch order: plain shuffling, the trainer's ``batch_order`` and ``LengthGroupedSampler``.

    python bench/sampler_padding.py ../shared/datasets/banking77/train.csv \
        --mix ../shared/datasets/financial_phrasebank/Sentences_50Agree.txt

For Banking77's short queries, and for the same queries mixed with PhraseBank's
longer sentences, prints per batch order: padded tokens per example (the sum
over batches of batch size x longest text, divided by the number of examples,
averaged over ``--epochs`` seeds), the median time to compute one epoch's order,
the size of the last batch, and how often a batch is no longer than the one
before it (about 0.5 when batches are shuffled, near 1 when they run long to
short within each mega-batch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from models.data.datasets import load_dataset
from models.encoding import default_encoder_path, load_tokenizer, token_lengths
from models.training.sampling import batch_order

Order = Callable[[Sequence[int], int, int], list[list[int]]]


def library_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """``LengthGroupedSampler``'s epoch, cut into batches as a ``DataLoader`` would."""
    generator = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedSampler(batch_size, lengths=list(lengths), generator=generator)
    flat = list(sampler)
    return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]


ORDERS: dict[str, Order] = {
    "plain shuffle": lambda lengths, size, seed: batch_order(lengths, size, seed, group=1),
    "batch_order (trainer)": lambda lengths, size, seed: batch_order(lengths, size, seed, group=50),
    "transformers LengthGroupedSampler": library_order,
}


def measure(order: Order, lengths: Sequence[int], batch_size: int, epochs: int) -> dict[str, float]:
    """Padded tokens per example, seconds per epoch's order, last batch, monotone pairs."""
    padded, seconds, monotone = [], [], []
    last = 0
    for seed in range(epochs):
        started = time.perf_counter()
        batches = order(lengths, batch_size, seed)
        seconds.append(time.perf_counter() - started)
        flat = sorted(i for b in batches for i in b)
        if flat != list(range(len(lengths))):
            msg = "an order lost or repeated an example"
            raise AssertionError(msg)
        longest = [max(lengths[i] for i in b) for b in batches]
        padded.append(sum(m * len(b) for m, b in zip(longest, batches, strict=True)))
        pairs = list(zip(longest, longest[1:], strict=False))
        monotone.append(sum(b <= a for a, b in pairs) / len(pairs))
        last = len(batches[-1])
    return {
        "padded_tokens_per_example": round(statistics.mean(padded) / len(lengths), 2),
        "ms_per_epoch_order": round(1000 * statistics.median(seconds), 2),
        "last_batch": last,
        "non_increasing_pairs": round(statistics.mean(monotone), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("data", type=Path, help="Banking77 train.csv")
    parser.add_argument("--mix", type=Path, help="PhraseBank Sentences_*.txt to mix in")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    tokenizer = load_tokenizer(default_encoder_path())
    short = [e.text for e in load_dataset(args.data, "banking77", "train")]
    sets = {"banking77": short}
    if args.mix:
        sets["banking77 + phrasebank"] = short + [
            e.text for e in load_dataset(args.mix, "phrasebank", "train")
        ]
    for name, texts in sets.items():
        lengths = token_lengths(tokenizer, texts, args.max_length)
        print(f"{name}: n={len(lengths)}, mean length {statistics.mean(lengths):.1f}")
        for label, order in ORDERS.items():
            row = {"order": label, **measure(order, lengths, args.batch_size, args.epochs)}
            print(json.dumps(row))


if __name__ == "__main__":
    main()
