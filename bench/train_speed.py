"""Training speed: plain shuffled batches vs length-grouped batches, measured in one run.

    python bench/train_speed.py ../shared/datasets/banking77/train.csv --format banking77

Times ``--steps`` optimiser steps of the default encoder with each batch order
(the same examples, model and optimiser settings; the first batches warm up)
and prints examples/s, padded tokens per example and the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from models.data.datasets import load_dataset
from models.encoding import default_encoder_path, encode, load_tokenizer, token_lengths
from models.modeling import AttentionClassifier
from models.training.optim import build_optimizer
from models.training.sampling import batch_order
from models.training.splits import tasks_from
from models.training.training_args import TrainingArgs


def run(data: Path, fmt: str, group: int, steps: int, max_length: int) -> dict[str, float]:
    examples = load_dataset(data, fmt, "train")
    task = next(iter(examples[0].labels))
    tasks = tasks_from(examples)
    tokenizer = load_tokenizer(default_encoder_path())
    torch.manual_seed(0)
    model = AttentionClassifier.from_encoder(str(default_encoder_path()), tasks)
    args = TrainingArgs(output_dir=Path("unused"), max_length=max_length)
    optimizer, scheduler = build_optimizer(model, args, steps + 5)
    index = {label: i for i, label in enumerate(tasks[0].labels)}
    lengths = token_lengths(tokenizer, [e.text for e in examples], max_length)
    batches = batch_order(lengths, 32, seed=0, group=group)[: steps + 3]
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    seen = tokens = 0
    started = 0.0
    for n, rows in enumerate(batches):
        if n == 3:  # warm-up batches excluded
            started = time.perf_counter()
        texts = [examples[i].text for i in rows]
        batch = encode(tokenizer, texts, max_length)
        target = torch.tensor([index[examples[i].labels[task]] for i in rows])
        out = model(batch.input_ids, batch.attention_mask, batch.pool_mask)
        loss = loss_fn(out[task].logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if n >= 3:
            seen += len(rows)
            tokens += batch.input_ids.numel()
    seconds = time.perf_counter() - started
    return {"group": group, "examples_per_s": seen / seconds, "padded_tokens": tokens / seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--format", default="banking77")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    plain = run(args.data, args.format, 1, args.steps, args.max_length)
    grouped = run(args.data, args.format, 50, args.steps, args.max_length)
    print(json.dumps(plain))
    print(json.dumps(grouped))
    ratio = grouped["examples_per_s"] / plain["examples_per_s"]
    print(f"length-grouped / plain training speed: {ratio:.2f}x")


if __name__ == "__main__":
    main()
