"""Readers for labelled data: the project's CSV/JSONL and public benchmark formats.

Public sets are read from where the user keeps them (``../shared/datasets``
here); nothing is downloaded and nothing is copied into the project.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

from models.data.examples import Example
from models.data.loading import load_labelled

Format = Literal["csv", "jsonl", "banking77", "clinc150", "phrasebank"]
FORMATS: tuple[str, ...] = ("csv", "jsonl", "banking77", "clinc150", "phrasebank")
#: Label of CLINC150's out-of-scope queries; never trained on, scored against ``unknown``.
OOS = "oos"


def load_banking77(path: Path) -> list[Example]:
    """Banking77 ``train.csv``/``test.csv``: columns ``text,category`` (77 intents)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"text", "category"} <= set(rows[0]):
        msg = f"{path}: expected Banking77 columns text,category"
        raise ValueError(msg)
    return [
        Example(r["text"].strip(), {"intent": r["category"].strip()}, "banking77") for r in rows
    ]


def load_phrasebank(path: Path) -> list[Example]:
    """Financial PhraseBank ``Sentences_*Agree.txt``: ``sentence@label`` per line.

    Decoded as UTF-8, falling back to latin-1 (the 50/66/75% files); split on the
    last ``@``.  Garbled Nordic letters in the original are kept as they are.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        label = label.strip()
        if not sep or label not in {"negative", "neutral", "positive"}:
            msg = f"{path}:{number}: expected 'sentence@negative|neutral|positive'"
            raise ValueError(msg)
        examples.append(Example(sentence.strip(), {"sentiment": label}, "phrasebank"))
    return examples


def load_clinc150(path: Path, split: str = "train") -> list[Example]:
    """CLINC150 ``data_full.json`` (or small/imbalanced/plus variants).

    ``train`` has in-scope queries only; ``val`` and ``test`` add the split's
    out-of-scope queries labelled ``oos``, which the unknown threshold must catch.
    """
    if split not in {"train", "val", "test"}:
        msg = f"CLINC150 split must be train, val or test, got {split!r}"
        raise ValueError(msg)
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = list(data.get(split, []))
    if split != "train":
        rows += [[text, OOS] for text, _ in data.get(f"oos_{split}", [])]
    if not rows:
        msg = f"{path}: no {split!r} queries (is this CLINC150's data_full.json?)"
        raise ValueError(msg)
    return [Example(str(text), {"intent": str(intent)}, "clinc150") for text, intent in rows]


def load_dataset(path: Path, fmt: str, split: str = "train") -> list[Example]:
    """Read ``path`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if not path.exists():
        msg = f"{path} does not exist"
        raise ValueError(msg)
    if fmt in {"csv", "jsonl"}:
        return load_labelled(path)
    if fmt == "banking77":
        return load_banking77(path)
    if fmt == "phrasebank":
        return load_phrasebank(path)
    if fmt == "clinc150":
        return load_clinc150(path, split)
    msg = f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
    raise ValueError(msg)
