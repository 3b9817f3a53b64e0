"""The project's own hand-written seed data and a typed loader for it.

The ``seed_data`` folder next to this module holds three JSON Lines files:

* ``chat.jsonl``: customer support-chat utterances labelled with an intent and
  the customer's sentiment (``negative``, ``neutral`` or ``positive``).
* ``agent.jsonl``: example replies from bank support staff, one intent each.
* ``news.jsonl``: financial news headlines about fictional companies, with
  their (fictional) tickers, the sentiment from an investor's point of view and
  an optional short body.

Every loader validates each line and raises :class:`ValueError` naming the file
and the 1-based line number of the first bad record.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "SEED_DIR",
    "SENTIMENTS",
    "AgentReply",
    "ChatExample",
    "NewsExample",
    "data_hash",
    "intents",
    "load_agent_replies",
    "load_chat",
    "load_news",
    "stratified_split",
]

T = TypeVar("T")

#: The sentiment labels used by every seed file, in a fixed order.
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

#: The folder holding the seed JSON Lines files.
SEED_DIR: Path = Path(__file__).parent / "seed_data"

_CHUNK = 1 << 16


@dataclass(frozen=True)
class ChatExample:
    """One customer utterance from a support chat.

    Attributes:
        text: What the customer typed.
        intent: The intent label, e.g. ``"card_declined"``.
        sentiment: The customer's tone, one of :data:`SENTIMENTS`.

    """

    text: str
    intent: str
    sentiment: str


@dataclass(frozen=True)
class NewsExample:
    """One financial news headline about one or more fictional companies.

    Attributes:
        headline: The headline text.
        tickers: The fictional tickers the headline is about (may be empty for
            macro headlines).
        sentiment: Investor sentiment, one of :data:`SENTIMENTS`.
        body: An optional short article body, or ``None``.

    """

    headline: str
    tickers: tuple[str, ...]
    sentiment: str
    body: str | None


@dataclass(frozen=True)
class AgentReply:
    """One reply a bank support agent might send for a given intent.

    Attributes:
        intent: The intent the reply answers.
        text: The reply text.

    """

    intent: str
    text: str


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Read a JSON Lines file into ``(line_number, object)`` pairs.

    Blank lines are skipped.

    Raises:
        ValueError: If a line is not valid JSON or not a JSON object.

    """
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                msg = f"{path}:{number}: invalid JSON ({error.msg})"
                raise ValueError(msg) from error
            if not isinstance(value, dict):
                msg = f"{path}:{number}: expected a JSON object, got {type(value).__name__}"
                raise ValueError(msg)
            records.append((number, value))
    return records


def _text(record: dict[str, Any], field: str, path: Path, number: int) -> str:
    """Return a required, non-blank string field, stripped of outer whitespace."""
    if field not in record:
        msg = f"{path}:{number}: missing field {field!r}"
        raise ValueError(msg)
    value = record[field]
    if not isinstance(value, str):
        msg = f"{path}:{number}: field {field!r} must be a string"
        raise ValueError(msg)
    value = value.strip()
    if not value:
        msg = f"{path}:{number}: field {field!r} is empty"
        raise ValueError(msg)
    return value


def _sentiment(record: dict[str, Any], path: Path, number: int) -> str:
    """Return the record's sentiment label, checked against :data:`SENTIMENTS`."""
    value = _text(record, "sentiment", path, number)
    if value not in SENTIMENTS:
        msg = f"{path}:{number}: unknown sentiment {value!r}; expected one of {SENTIMENTS}"
        raise ValueError(msg)
    return value


def load_chat(path: Path | None = None) -> list[ChatExample]:
    """Load labelled customer chat utterances.

    Args:
        path: A JSON Lines file with ``text``, ``intent`` and ``sentiment``
            fields; defaults to ``SEED_DIR / "chat.jsonl"``.

    Returns:
        The examples in file order.

    Raises:
        ValueError: If a line is malformed, naming the file and line number.

    """
    source = SEED_DIR / "chat.jsonl" if path is None else path
    return [
        ChatExample(
            text=_text(record, "text", source, number),
            intent=_text(record, "intent", source, number),
            sentiment=_sentiment(record, source, number),
        )
        for number, record in read_records(source)
    ]


def load_news(path: Path | None = None) -> list[NewsExample]:
    """Load labelled financial news headlines.

    Args:
        path: A JSON Lines file with ``headline``, ``tickers`` (a list of
            strings), ``sentiment`` and optional ``body`` fields; defaults to
            ``SEED_DIR / "news.jsonl"``.

    Returns:
        The headlines in file order.

    Raises:
        ValueError: If a line is malformed, naming the file and line number.

    """
    source = SEED_DIR / "news.jsonl" if path is None else path
    examples: list[NewsExample] = []
    for number, record in read_records(source):
        headline = _text(record, "headline", source, number)
        if "tickers" not in record:
            msg = f"{source}:{number}: missing field 'tickers'"
            raise ValueError(msg)
        raw_tickers = record["tickers"]
        if not isinstance(raw_tickers, list) or not all(
            isinstance(t, str) and t.strip() for t in raw_tickers
        ):
            msg = f"{source}:{number}: field 'tickers' must be a list of non-empty strings"
            raise ValueError(msg)
        tickers = tuple(str(t).strip() for t in raw_tickers)
        sentiment = _sentiment(record, source, number)
        body: str | None = None
        if record.get("body") is not None:
            body = _text(record, "body", source, number)
        examples.append(NewsExample(headline, tickers, sentiment, body))
    return examples


def load_agent_replies(path: Path | None = None) -> list[AgentReply]:
    """Load example support-agent replies.

    Args:
        path: A JSON Lines file with ``intent`` and ``text`` fields; defaults
            to ``SEED_DIR / "agent.jsonl"``.

    Returns:
        The replies in file order.

    Raises:
        ValueError: If a line is malformed, naming the file and line number.

    """
    source = SEED_DIR / "agent.jsonl" if path is None else path
    return [
        AgentReply(
            intent=_text(record, "intent", source, number),
            text=_text(record, "text", source, number),
        )
        for number, record in read_records(source)
    ]


def stratified_split(
    items: Sequence[T],
    key: Callable[[T], str],
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[T], list[T]]:
    """Split items into train and test sets, class by class.

    Each class of ``n`` items contributes ``round(n * test_fraction)`` items to
    the test set, at least one when ``n >= 2`` and never all of them (a class
    with a single item stays in train). Which items go to test is decided by a
    random generator seeded from ``seed`` and the class name, so the split is
    deterministic and a class's split does not depend on the other classes.
    Both returned lists keep the input order.

    Args:
        items: The items to split.
        key: Returns an item's class label.
        test_fraction: The share of each class to hold out, in ``(0, 1)``.
        seed: Seed for choosing the held-out items.

    Returns:
        ``(train, test)``.

    Raises:
        ValueError: If ``test_fraction`` is not strictly between 0 and 1.

    """
    if not 0.0 < test_fraction < 1.0:
        msg = f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}"
        raise ValueError(msg)
    by_class: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_class.setdefault(key(item), []).append(index)
    # Kept instead of sklearn's train_test_split(stratify=...) / StratifiedShuffleSplit, which
    # break three of the guarantees above (tried on the seed chats, intent/sentiment key, 54
    # classes, 823 items, test_fraction 0.2, seed 0): they raise on any class with one item (a
    # user's CSV can have one, and the trainer's validation key is group plus every label);
    # their held-out count missed round(n * 0.2) in 7 of 54 classes (they round the total,
    # then share it out); and they draw one permutation over all items, so dropping one
    # 19-item class moved 242 of the other 804 items across train/test (0 here). The trainer's
    # validation split and every ensemble member sharing a `split_seed` depend on this.
    held_out: set[int] = set()
    for label, indices in by_class.items():
        n = len(indices)
        if n < 2:
            continue
        count = min(max(round(n * test_fraction), 1), n - 1)
        rng = random.Random(f"{seed}:{label}")  # noqa: S311 - a data split, not security
        held_out.update(rng.sample(indices, count))
    train = [item for index, item in enumerate(items) if index not in held_out]
    test = [item for index, item in enumerate(items) if index in held_out]
    return train, test


def data_hash(*paths: Path) -> str:
    """Return the SHA-256 hex digest of the given files' bytes, in order.

    Args:
        *paths: The files to hash; their contents are hashed as one stream.

    Returns:
        A 64-character lowercase hex string, e.g. for a model card.

    """
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def intents() -> list[str]:
    """Return the sorted list of intents present in the seed ``chat.jsonl``."""
    return sorted({example.intent for example in load_chat()})
