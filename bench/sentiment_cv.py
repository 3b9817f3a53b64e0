"""Financial PhraseBank: stratified k-fold cross-validation of the attention classifier.

    python bench/sentiment_cv.py ../shared/datasets/financial_phrasebank/Sentences_AllAgree.txt

No official split exists, so the protocol is stratified 10-fold CV with seed 0
(as FinPerceiver reports); each fold's model early-stops on a validation split
carved out of its own training folds, never on the held-out fold.  Prints a
JSON summary with per-fold and mean ± std accuracy and macro-F1.

The folds come from scikit-learn's ``StratifiedKFold(shuffle=True, random_state=seed)``
since issue 9; the runs recorded in ``bench/RESULTS.md`` before that used a hand-written
round-robin assignment, so the same fold number holds other sentences.  Do not resume
a ``--results`` file written before the change: start a new one.

``--faithfulness N`` also scores the logged attention words of the first
``--faithfulness-folds`` folds' models on N of their held-out sentences
(ERASER comprehensiveness/sufficiency vs random words and gradient x input).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import cast

import numpy as np
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

from models.data.datasets import load_phrasebank
from models.data.seed import data_hash
from models.explain.faithfulness import RANDOM, explain_eval
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs


def folds(labels: list[str], k: int, seed: int) -> list[list[int]]:
    """Held-out indices of each of ``k`` stratified folds (sklearn's ``StratifiedKFold``).

    Every index is held out exactly once; each class's count in a fold is the floor or
    ceiling of its size / ``k``.  Raises ``ValueError`` when ``k`` exceeds every class's size.
    """
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test.tolist() for _, test in splitter.split(np.zeros(len(labels)), labels)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--only-folds", type=int, default=0, help="run just the first N folds")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=8e-5)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--attention-entropy", type=float, default=0.0)
    parser.add_argument("--average-last", type=int, default=0)
    parser.add_argument(
        "--faithfulness-retry-entropy",
        type=float,
        default=None,
        help="penalty of the retry when attention fails the bar (default: TrainingArgs'; 0 = off)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="JSON Lines file of finished folds: appended to, and folds already in it are skipped",
    )
    parser.add_argument("--faithfulness", type=int, default=0, help="held-out texts to explain")
    parser.add_argument("--faithfulness-folds", type=int, default=1)
    args = parser.parse_args()

    examples = load_phrasebank(args.data)
    assignment = folds([e.labels["sentiment"] for e in examples], args.folds, args.seed)
    results: list[dict[str, object]] = []
    if args.results is not None and args.results.is_file():
        results = [json.loads(line) for line in args.results.read_text().splitlines() if line]
    done = {r["fold"] for r in results}
    started = time.perf_counter()
    for number, held_out in enumerate(assignment[: args.only_folds or args.folds]):
        if number in done:
            continue
        held = set(held_out)
        train = [e for i, e in enumerate(examples) if i not in held]
        test = [examples[i] for i in held_out]
        with tempfile.TemporaryDirectory() as tmp:
            result = Trainer(
                TrainingArgs(
                    output_dir=Path(tmp) / "model",
                    encoder=args.encoder,
                    name=f"phrasebank-fold{number}",
                    epochs=args.epochs,
                    learning_rate=args.learning_rate,
                    max_length=args.max_length,
                    seed=args.seed,
                    val_fraction=args.val_fraction,
                    attention_entropy=args.attention_entropy,
                    average_last=args.average_last,
                    patience=0,
                    **(
                        {}
                        if args.faithfulness_retry_entropy is None
                        else {"faithfulness_retry_entropy": args.faithfulness_retry_entropy}
                    ),
                    device="cpu",
                )
            ).train(train, test, data_hash(args.data))
            metrics = result.metrics["sentiment"]["phrasebank"]
            results.append(
                {
                    "fold": number,
                    "accuracy": metrics.accuracy,
                    "macro_f1": metrics.macro_f1,
                    "train_seconds": result.seconds,
                    # training's own check on its validation slice (models.training.trust)
                    "trust": {task: t.to_dict() for task, t in result.trust.items()},
                    # set when the plain run failed the bar and the penalty run was kept
                    "first_attempt": result.first_attempt or None,
                }
            )
            if args.faithfulness and number < args.faithfulness_folds:
                scored = explain_eval(
                    Path(tmp) / "model",
                    [e.text for e in test],
                    "sentiment",
                    limit=args.faithfulness,
                    progress=False,
                )
                k = 0.2
                results[-1]["comp@20"] = {
                    m: round(r.comprehensiveness[k], 4) for m, r in scored.items()
                }
                results[-1]["comp@20_attention_over_random"] = round(
                    scored["attention"].comprehensiveness[k]
                    / max(scored[RANDOM].comprehensiveness[k], 1e-9),
                    2,
                )
        print(json.dumps(results[-1]), flush=True)
        if args.results is not None:
            with args.results.open("a", encoding="utf-8") as out:
                out.write(json.dumps(results[-1]) + "\n")

    def summary(key: str) -> str:
        values = [float(cast(float, r[key])) for r in results]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {std:.4f}"

    print(
        json.dumps(
            {
                "data": args.data.name,
                "folds_run": len(results),
                "accuracy": summary("accuracy"),
                "macro_f1": summary("macro_f1"),
                "wall_seconds": round(time.perf_counter() - started, 1),
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
