"""Sentence splitters for news bodies: accuracy and speed (decision 0021).

    python bench/sentence_split.py

Candidates (each installed on its own, they are not project dependencies except the one in
use): ``models.long_text.split_sentences`` (the project's, sentencex inside), pysbd, nupunkt,
syntok, blingfire.  Measured:

- the 25 gold financial-news cases of ``tests/unit/models/test_long_text.py``;
- 500 paragraphs of four Financial PhraseBank (all-agree) sentences each, seeded: exact
  boundaries (note PhraseBank's sentences are tokenised, "word ." with a space before the
  dot, which spares a splitter most abbreviation decisions);
- ms per 2,000 characters of the gold texts, and two poison pills (150,000 characters of
  "A. ", 135,000 of repeated abbreviations).
"""

from __future__ import annotations

import importlib.util
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

from models.long_text import split_sentences

ROOT = Path(__file__).resolve().parents[1]
PHRASEBANK = ROOT.parent / "shared/datasets/financial_phrasebank/Sentences_AllAgree.txt"
Splitter = Callable[[str], list[str]]


def _gold() -> list[tuple[str, list[str]]]:
    path = ROOT / "tests/unit/models/test_long_text.py"
    spec = importlib.util.spec_from_file_location("gold_cases", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a bench
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [tuple(case.values) for case in module.GOLD]


def _per_paragraph(split: Callable[[str], list[str]]) -> Splitter:
    return lambda text: [s for p in re.split(r"\n\s*\n", text) for s in split(" ".join(p.split()))]


def candidates() -> dict[str, Splitter]:
    """The project's splitter and whichever of the others are installed."""
    found: dict[str, Splitter] = {"attnwatch (sentencex)": split_sentences}
    try:
        import pysbd  # type: ignore[import-not-found]  # noqa: PLC0415

        seg = pysbd.Segmenter(language="en", clean=False)
        found["pysbd"] = _per_paragraph(seg.segment)
    except ImportError:
        pass
    try:
        import nupunkt  # type: ignore[import-not-found]  # noqa: PLC0415

        found["nupunkt"] = _per_paragraph(nupunkt.sent_tokenize)
    except ImportError:
        pass
    try:
        import blingfire  # type: ignore[import-not-found]  # noqa: PLC0415

        found["blingfire"] = _per_paragraph(lambda t: blingfire.text_to_sentences(t).split("\n"))
    except ImportError:
        pass
    return found


def _norm(sentences: list[str]) -> list[str]:
    return [" ".join(s.split()) for s in sentences if s.strip()]


def main() -> None:
    """Print one line per splitter."""
    gold = _gold()
    lines = [
        line.rsplit("@", 1)[0].strip() for line in PHRASEBANK.read_text("latin-1").splitlines()
    ]
    lines = [line for line in lines if line and line[-1] in ".!?"]
    random.Random(0).shuffle(lines)
    paragraphs = [lines[i : i + 4] for i in range(0, 2000, 4)]
    big = " ".join(text for text, _ in gold) * 4
    for name, split in candidates().items():
        right = sum(_norm(split(text)) == _norm(want) for text, want in gold)
        exact = sum(_norm(split(" ".join(p))) == _norm(p) for p in paragraphs)
        split(big)
        started = time.perf_counter()
        for _ in range(5):
            split(big)
        ms = (time.perf_counter() - started) / 5 / len(big) * 2000 * 1000
        pills = []
        for text in ("A. " * 50_000, "Mr. Dr. Inc. Jan. No. U.S. " * 5_000):
            started = time.perf_counter()
            split(text)
            pills.append(f"{time.perf_counter() - started:.2f} s")
        print(
            f"{name:24s} gold {right}/{len(gold)}  phrasebank {exact}/{len(paragraphs)}  "
            f"{ms:.2f} ms per 2,000 chars  poison pills {', '.join(pills)}"
        )


if __name__ == "__main__":
    main()
