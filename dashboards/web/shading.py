"""A message's words shaded by the attention the model gave them, as escaped HTML.

Each word of the text becomes ``<span class="w" data-word=... data-weight=...>``, its
background darker the more weight the head gave it (relative to the message's heaviest
word) and the weight in its ``title`` for hover; the text's own spacing and line breaks
stay.  ``data-weight`` holds the logged weight exactly (``repr`` of the float), so the
weights a browser test reads from a message sum to what the store holds (1, or less when
the pipeline trimmed the lowest weights to fit the topic's record size).

The pipeline logs each word with its character offsets in the text (``start``, ``end``:
words split from their punctuation, see :mod:`models.words`), and those exact spans are
shaded; the text between them is whitespace, kept as it is, or words whose weight was
trimmed, which get a span without ``data-weight``.  Events logged before offsets (over
whitespace words) are matched in order against the text's whitespace words instead, with
the same rule for trimmed words.  If the list does not follow the text at all (e.g. a
text edited after classification), the logged words are shown instead, so no weight is
ever dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from models.words import word_spans

#: Background colour per task (Okabe-Ito sky blue and orange: black text stays readable
#: on both at full strength, contrast above 8:1).
COLOURS = {"intent": (86, 180, 233), "sentiment": (230, 159, 0)}
#: Opacity of the heaviest word; lighter words scale down from it.
MAX_ALPHA = 0.85

_TOKENS = re.compile(r"(\s+)")


def _weights(attention: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, float]]:
    return [(str(a.get("word", "")), float(a.get("weight", 0.0))) for a in attention or ()]


def _span(word: str, weight: float | None, heaviest: float, task: str) -> str:
    if weight is None:
        return (
            f'<span class="w" data-word="{escape(word)}" title="weight not logged">'
            f"{escape(word)}</span>"
        )
    red, green, blue = COLOURS.get(task, COLOURS["sentiment"])
    alpha = MAX_ALPHA * weight / heaviest if heaviest > 0 else 0.0
    return (
        f'<span class="w" data-word="{escape(word)}" data-weight="{weight!r}" '
        f'title="{escape(word)}: {task} attention {weight:.3f}" '
        f'style="background-color: rgba({red}, {green}, {blue}, {alpha:.2f})">'
        f"{escape(word)}</span>"
    )


def _offsets(
    text: str, attention: Sequence[Mapping[str, Any]] | None
) -> list[tuple[int, int]] | None:
    """Every entry's ``(start, end)`` when all hold their word in ``text`` in order, else None."""
    spans: list[tuple[int, int]] = []
    previous_end = 0
    for entry in attention or ():
        start, end = entry.get("start"), entry.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            return None
        if not previous_end <= start < end or text[start:end] != entry.get("word"):
            return None
        spans.append((start, end))
        previous_end = end
    return spans if spans else None


def _shade_spans(
    text: str, spans: list[tuple[int, int]], weights: list[tuple[str, float]], task: str
) -> Markup:
    """``text`` with the logged ``spans`` shaded, and what lies between them unweighted."""
    heaviest = max((w for _, w in weights), default=0.0)
    parts: list[str] = []
    cursor = 0
    for (start, end), (word, weight) in zip(spans, weights, strict=True):
        parts += [_unlogged(text[cursor:start], task), _span(word, weight, heaviest, task)]
        cursor = end
    parts.append(_unlogged(text[cursor:], task))
    return Markup("".join(parts))  # noqa: S704 (every piece escaped)


def _unlogged(gap: str, task: str) -> str:
    """Whitespace as it is, and each word in it (its weight trimmed) as an unweighted span."""
    parts: list[str] = []
    cursor = 0
    for start, end in word_spans(gap):
        parts += [str(escape(gap[cursor:start])), _span(gap[start:end], None, 0.0, task)]
        cursor = end
    parts.append(str(escape(gap[cursor:])))
    return "".join(parts)


def shade(text: str, attention: Sequence[Mapping[str, Any]] | None, task: str) -> Markup:
    """``text`` as HTML with each word shaded by its weight in ``attention`` (``task``'s)."""
    weights = _weights(attention)
    spans = _offsets(text, attention)
    if spans is not None:
        return _shade_spans(text, spans, weights, task)
    heaviest = max((w for _, w in weights), default=0.0)
    parts: list[str] = []
    next_weight = 0
    for token in _TOKENS.split(text):
        if not token:
            continue
        if token.isspace():
            parts.append(str(escape(token)))
            continue
        weight: float | None = None
        if next_weight < len(weights) and weights[next_weight][0] == token:
            weight = weights[next_weight][1]
            next_weight += 1
        parts.append(_span(token, weight, heaviest, task))
    if next_weight < len(weights):
        # The list does not follow the text: show the words as logged, weights and all.
        parts = [_span(word, weight, heaviest, task) for word, weight in weights]
        return Markup(" ".join(parts))  # noqa: S704 (every piece escaped in _span)
    return Markup("".join(parts))  # noqa: S704 (every piece escaped above)


def top_words(attention: Sequence[Mapping[str, Any]] | None, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` heaviest words and their weights, heaviest first (ties in text order)."""
    weights = _weights(attention)
    order = sorted(range(len(weights)), key=lambda i: -weights[i][1])
    return [weights[i] for i in order[:n]]
