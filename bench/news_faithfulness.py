"""Long news: is the article-level attention faithful when the article gets longer?

    .venv/bin/python bench/news_faithfulness.py var/models/default --limit 40 --filler 4

``attnwatch explain-eval MODEL --articles`` scores the seed news items that have a body
(a headline and three sentences).  This script scores the same articles made longer, by
a fixed recipe, to see whether the logged article weights still find the words that
decide when the deciding sentence is one of many:

* the first ``--limit`` seed articles with a body, in file order;
* each body followed by ``--filler`` neutral sentences of Financial PhraseBank
  (``Sentences_AllAgree.txt``, read at run time from ``--phrasebank``, never copied),
  drawn without replacement per article by ``random.Random(seed * 100_003 + article)``
  from the neutral sentences in file order; the body and the filler are joined by a space
  (one paragraph, as wire copy with boilerplate reads).

The article label is the model's own on the padded article (ERASER scores the model's
decision, not the gold label), so the share of articles still labelled as their seed
label is printed beside the table.  The classifier is the one the run loop serves
(``model_runtime`` and ``device`` from the settings).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from attnwatch.service import load_classifier
from attnwatch.settings import Settings
from models.data import seed
from models.data.datasets import load_phrasebank
from models.explain.article import Article, article_faithfulness, render_article_markdown

DEFAULT_PHRASEBANK = Path("../shared/datasets/financial_phrasebank/Sentences_AllAgree.txt")


def padded_articles(
    phrasebank: Path, limit: int, filler: int, seed_value: int
) -> tuple[list[Article], list[str]]:
    """The first ``limit`` seed articles with a body, padded by the module's recipe; labels."""
    neutral = [e.text for e in load_phrasebank(phrasebank) if e.labels["sentiment"] == "neutral"]
    news = [n for n in seed.load_news() if n.body][:limit]
    articles = []
    for index, item in enumerate(news):
        rng = random.Random(seed_value * 100_003 + index)
        extra = rng.sample(neutral, filler) if filler else []
        articles.append(Article(item.headline, " ".join([item.body or "", *extra]).strip()))
    return articles, [n.sentiment for n in news]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--limit", type=int, default=40, help="seed articles scored")
    parser.add_argument("--filler", type=int, default=4, help="neutral sentences appended")
    parser.add_argument("--phrasebank", type=Path, default=DEFAULT_PHRASEBANK)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    settings = Settings(model_dir=args.model)
    classifier = load_classifier(settings)
    articles, gold = padded_articles(args.phrasebank, args.limit, args.filler, args.seed)
    started = time.perf_counter()
    report = article_faithfulness(
        classifier,
        articles,
        args.task,
        seed=args.seed,
        max_sentences=settings.max_sentences,
        progress=True,
    )
    seconds = time.perf_counter() - started
    full = report.labels
    kept = sum(a == b for a, b in zip(full, gold, strict=True))
    print(f"## {args.limit} seed articles + {args.filler} neutral PhraseBank sentences each\n")
    print(render_article_markdown(report))
    print(f"Model labels: {dict(Counter(full))}; {kept}/{len(gold)} keep their seed label.")
    model = f"{classifier.info.name}@{classifier.info.version}"
    print(f"{seconds:.0f} s on {settings.device} ({model})")
    if args.json:
        payload = {
            "model": model,
            "limit": args.limit,
            "filler": args.filler,
            "seed": args.seed,
            "n": report.n,
            "mean_sentences": report.mean_sentences,
            "mean_words": report.mean_words,
            "results": {m: asdict(r) for m, r in report.results.items()},
            "labels_kept": kept,
            "seconds": seconds,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
