"""One sentiment head for chats and news, or one each? Train both ways and compare.

    python bench/sentiment_heads.py [--seeds 0 1] [--news-test PHRASEBANK_FILE]

Both variants train jointly with intent on the seed training split (80%); the
*separate* variant relabels headlines under a ``news_sentiment`` task, so news
and chats get their own attention query and classifier while sharing the
encoder.  Scores: the seed's held-out 20% (chat and news sentiment, intent),
and, when ``--news-test`` is given, every sentence of a Financial PhraseBank
file as an out-of-domain news test (read only for scoring; nothing is tuned
on it).  Prints a JSON line per run and a Markdown table of means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from models.data.datasets import load_phrasebank
from models.data.examples import Example
from models.data.loading import seed_examples
from models.evaluation.metrics import evaluate
from models.saving import load_model
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs

NEWS_TASK = "news_sentiment"


def separate(examples: Sequence[Example]) -> list[Example]:
    """Headlines' sentiment labels moved to their own task."""
    out = []
    for e in examples:
        if e.group == "news" and "sentiment" in e.labels:
            labels = {NEWS_TASK if t == "sentiment" else t: v for t, v in e.labels.items()}
            out.append(Example(e.text, labels, e.group))
        else:
            out.append(e)
    return out


def run(variant: str, seed: int, epochs: int, news_test: Path | None) -> dict[str, float | str]:
    """Train one variant with one seed and score it."""
    train, test, digest = seed_examples()
    news_task = NEWS_TASK if variant == "separate" else "sentiment"
    if variant == "separate":
        train, test = separate(train), separate(test)
    with tempfile.TemporaryDirectory() as tmp:
        result = Trainer(
            TrainingArgs(output_dir=Path(tmp) / "m", epochs=epochs, seed=seed, device="cpu")
        ).train(train, test, digest)
        scores: dict[str, float | str] = {
            "variant": variant,
            "seed": seed,
            "intent_acc": result.metrics["intent"]["chat"].accuracy,
            "chat_sentiment_acc": result.metrics["sentiment"]["chat"].accuracy,
            "news_sentiment_acc": result.metrics[news_task]["news"].accuracy,
            "train_seconds": round(result.seconds, 1),
        }
        if news_test is not None:
            loaded = load_model(Path(tmp) / "m", "cpu")
            outside = [
                Example(e.text, {news_task: e.labels["sentiment"]}, "phrasebank")
                for e in load_phrasebank(news_test)
            ]
            metrics = evaluate(loaded.model, loaded.tokenizer, outside, loaded.info.max_length)
            scores["phrasebank_acc"] = metrics[news_task]["phrasebank"].accuracy
            scores["phrasebank_macro_f1"] = metrics[news_task]["phrasebank"].macro_f1
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--news-test", type=Path, default=None)
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        for variant in ("shared", "separate"):
            rows.append(run(variant, seed, args.epochs, args.news_test))
            print(json.dumps(rows[-1]), flush=True)

    keys = [k for k in rows[0] if k not in {"variant", "seed"}]
    print("\n| variant | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for variant in ("shared", "separate"):
        mine = [r for r in rows if r["variant"] == variant]
        cells = []
        for key in keys:
            values = [float(r[key]) for r in mine]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {std:.4f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
