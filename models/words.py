"""Turn per-word-piece attention into per-word attention an analyst can read.

A word is a whitespace-separated span of the original text.  Its weight is
the sum of the weights of the word pieces that fall inside it, so the words
of a message still sum to one (special tokens and padding carry no weight in
the first place: the pooling mask excludes them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class WordWeight:
    """A word of the text and the attention weight it received."""

    word: str
    weight: float


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the whitespace-separated words of ``text``."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def merge_word_pieces(
    text: str, offsets: Sequence[tuple[int, int]], weights: Sequence[float]
) -> list[WordWeight]:
    """Sum piece weights into the whitespace words containing them, in text order.

    ``offsets`` are character spans of the pieces in ``text`` (as a fast
    tokenizer's ``offset_mapping`` gives them); pieces with an empty span
    (special tokens, padding) must already be left out.  Words that got no
    piece (cut off by truncation) are left out; the result sums to
    ``sum(weights)``.
    """
    if len(offsets) != len(weights):
        msg = f"{len(offsets)} offsets but {len(weights)} weights"
        raise ValueError(msg)
    spans = word_spans(text)
    totals: dict[int, float] = {}
    word = 0
    for (start, end), weight in sorted(zip(offsets, weights, strict=True)):
        if end <= start:
            msg = f"empty piece span ({start}, {end}): drop special tokens first"
            raise ValueError(msg)
        while word < len(spans) and spans[word][1] <= start:
            word += 1
        if word == len(spans):
            msg = f"piece span ({start}, {end}) lies outside the text"
            raise ValueError(msg)
        totals[word] = totals.get(word, 0.0) + float(weight)
    return [WordWeight(text[spans[i][0] : spans[i][1]], totals[i]) for i in sorted(totals)]
