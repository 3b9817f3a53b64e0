"""Training data: the project's seed set, or a user's labelled CSV/JSONL file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from models.data import seed
from models.data.examples import Example

TASK_COLUMNS = ("intent", "sentiment")


def seed_examples(
    test_fraction: float = 0.2, seed_value: int = 0
) -> tuple[list[Example], list[Example], str]:
    """Seed chats (intent + sentiment) and headlines (sentiment), split 80/20 per class.

    Returns train, test and the SHA-256 of the seed files.
    """
    chats = seed.load_chat()
    news = seed.load_news()
    chat_train, chat_test = seed.stratified_split(
        chats,
        key=lambda c: f"{c.intent}/{c.sentiment}",
        test_fraction=test_fraction,
        seed=seed_value,
    )
    news_train, news_test = seed.stratified_split(
        news, key=lambda n: n.sentiment, test_fraction=test_fraction, seed=seed_value
    )

    def chat(c: seed.ChatExample) -> Example:
        return Example(c.text, {"intent": c.intent, "sentiment": c.sentiment}, "chat")

    def headline(n: seed.NewsExample) -> Example:
        return Example(n.headline, {"sentiment": n.sentiment}, "news")

    train = [chat(c) for c in chat_train] + [headline(n) for n in news_train]
    test = [chat(c) for c in chat_test] + [headline(n) for n in news_test]
    digest = seed.data_hash(seed.SEED_DIR / "chat.jsonl", seed.SEED_DIR / "news.jsonl")
    return train, test, digest


def load_labelled(path: Path, group: str = "default") -> list[Example]:
    """Read ``text`` plus any of ``intent``/``sentiment`` from a .csv or .jsonl file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows: list[dict[str, object]] = list(csv.DictReader(handle))
    elif path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                msg = f"{path}:{number}: not JSON: {exc}"
                raise ValueError(msg) from exc
    else:
        msg = f"{path}: expected a .csv or .jsonl file"
        raise ValueError(msg)
    examples = []
    for number, row in enumerate(rows, 1):
        text = str(row.get("text") or "").strip()
        labels = {t: str(row[t]).strip() for t in TASK_COLUMNS if row.get(t)}
        if not text or not labels:
            msg = f"{path}: row {number} needs a text and at least one of {TASK_COLUMNS}"
            raise ValueError(msg)
        examples.append(Example(text, labels, str(row.get("group") or group)))
    return examples
