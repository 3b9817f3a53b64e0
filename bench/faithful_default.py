"""The default recipe's faithfulness retry on data where plain attention is not faithful.

``attnwatch train`` measures each task's attention on its validation split and, when it
fails the bar (models/training/trust.py), trains again with the attention-entropy penalty
(``faithfulness_retry_entropy``, default 0.3).  This runs the *defaults* (only the data's
length and epochs set, as for every Banking77 run) on a stratified Banking77 subset, small
enough for 2 CPU cores, and reports both attempts: validation faithfulness and test
accuracy of the plain first run (from ``metrics.json``'s ``first_attempt``) and of the
model that was kept::

    python bench/faithful_default.py --per-intent 26 --epochs 3

Results: ``bench/results/faithful_default.json`` (and printed).  The test split only reports.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path

from models.data.datasets import load_banking77
from models.data.examples import Example
from models.data.seed import data_hash
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "banking77"


def subset(examples: list[Example], per_intent: int, seed: int) -> list[Example]:
    """``per_intent`` queries of every intent, drawn with ``seed``."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_intent[e.labels["intent"]].append(e)
    rng = random.Random(seed)
    chosen = []
    for intent in sorted(by_intent):
        rows = by_intent[intent]
        chosen += rng.sample(rows, min(per_intent, len(rows)))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-intent", type=int, default=26)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=Path("var/faithful_default"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/faithful_default.json"))
    opts = parser.parse_args()

    train = subset(load_banking77(opts.data / "train.csv"), opts.per_intent, opts.seed)
    test = load_banking77(opts.data / "test.csv")
    started = time.perf_counter()
    args = TrainingArgs(
        output_dir=opts.work_dir / "banking77-subset",
        name="banking77-subset-default",
        epochs=opts.epochs,
        max_length=opts.max_length,
        seed=opts.seed,
    )
    result = Trainer(args).train(train, test, data_hash(opts.data / "train.csv"))
    metrics = json.loads((result.directory / "metrics.json").read_text(encoding="utf-8"))
    report = {
        "command": "python bench/faithful_default.py "
        f"--per-intent {opts.per_intent} --epochs {opts.epochs}",
        "n_train": len(train),
        "n_test": len(test),
        "first_attempt": metrics.get("first_attempt"),
        "kept": {
            "attention_entropy": args.attention_entropy
            if not metrics.get("first_attempt")
            else args.faithfulness_retry_entropy,
            "faithfulness": metrics["faithfulness"],
            "test": metrics["test"],
            "train_seconds": result.seconds,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
