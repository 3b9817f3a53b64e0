r"""A copy of a text for detection: spelled-out digits as digits, wrapped numbers joined.

Customers read numbers out ("four one four seven ...", "oh seven nine double one",
"triple seven") wherever text comes from speech, and paste numbers that a mail client
wrapped ("4111 1111\n1111 1111").  :func:`normalise` writes a copy in which each run of
number words (with digits mixed in or not) is the digits they say, written together, and
each line break or run of spaces inside a number is one space; :class:`OffsetMap` maps a
span found in the copy back to the original text, so the original words are redacted.

No library does this: ``word2number`` and ``text2num`` read quantities ("twenty five"), not
digit-by-digit sequences with "oh", "double" and "triple", and keep no offsets.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0", "one": "1", "two": "2",
    "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_WORD = "zero|oh|one|o|nought|nil|two|three|four|five|six|seven|eight|nine"
# One token of a read-out number: a number word, "double"/"triple" and a word or digit, or
# digits as typed; "plus" only starts a run (an international number).
_TOKEN = rf"(?:(?:double|triple)[ -]?(?:{_WORD}|\d)\b|(?:{_WORD})\b|\d+(?![\w.,]\d))"
# Possessive quantifiers: no backtracking into a run of spaces (a long one made the
# alternation quadratic: 200 s for 20,000 spaces after three number words).
_SEP = r"(?=[ \t,.\-\r\n])[ \t]*+(?:[,.\-]|\r?\n)?[ \t]*+"
# At least four tokens: shorter runs say too few digits to be an identifier.
_SPELLED = re.compile(
    rf"(?<![\w-])(?:plus{_SEP})?{_TOKEN}(?:{_SEP}{_TOKEN}){{3,}}(?![\w-])", re.IGNORECASE
)
_WORD_PAIR = re.compile(rf"(?:{_WORD}|double|triple)[ ,.\-]+(?:{_WORD}|double|triple|\d+)\b")
_SPELLED_TOKEN = re.compile(
    rf"plus\b|(double|triple)[ -]?({_WORD}|\d)\b|(?:{_WORD})\b|\d+", re.IGNORECASE
)
# A line break, or two or more spaces or tabs, with a digit on at least one side and a
# letter or digit on the other, or capitals on both (an IBAN's letters): a number wrapped
# or spread out.
# A JSON escape written out ("\\n" in a malformed event's raw text) is a line break too.
_GAP = r"(?:[ \t]*+(?:\r?\n|(?:\\r)?\\n)[ \t]*+|[ \t]{2,}+)"
_WRAP = re.compile(rf"(?<=\d){_GAP}(?=\w)|(?<=\w){_GAP}(?=\d)|(?<=[A-Z]){_GAP}(?=[A-Z])")
#: Fewest digits a spelled run must say to be rewritten (the shortest identifier: a sort code).
MIN_DIGITS = 6


@dataclass(frozen=True)
class OffsetMap:
    """Where spans of the normalised copy are in the original text.

    ``edits`` are ``(copy_start, copy_end, start, end)``: the copy's ``[copy_start,
    copy_end)`` replaces the original's ``[start, end)``; between edits the two agree.
    """

    edits: tuple[tuple[int, int, int, int], ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the copy's ``[start, end)`` (whole edits, never part)."""
        return self._position(start, False), self._position(end - 1, True)

    def _position(self, at: int, after: bool) -> int:
        ends = [e[1] for e in self.edits]
        # Edits wholly before ``at`` shift it; an edit that holds ``at`` maps to its span.
        k = bisect.bisect_right(ends, at)
        if k < len(self.edits) and self.edits[k][0] <= at < self.edits[k][1]:
            return self.edits[k][3] if after else self.edits[k][2]
        shift = 0
        if k:
            copy_end, orig_end = self.edits[k - 1][1], self.edits[k - 1][3]
            shift = orig_end - copy_end
        return at + shift + (1 if after else 0)


def normalise(text: str) -> tuple[str, OffsetMap] | None:
    """The detection copy of ``text`` and its offset map, or None when it would be the same."""
    edits: list[tuple[int, int, str]] = []  # original start, end, replacement
    # Cheap pre-filters (substring searches and one regex over the lowercased text): most
    # messages have neither two number words in a row nor a gap inside a number.
    spelled = _SPELLED.finditer(text) if _WORD_PAIR.search(text.lower()) else ()
    for m in spelled:
        tokens = list(_SPELLED_TOKEN.finditer(m.group()))
        said = [_said(t) for t in tokens]
        if sum(len(s) for s in said) < MIN_DIGITS or all(t.group().isdigit() for t in tokens):
            continue
        base = m.start()
        # One edit per token, and the separators between tokens dropped, so a span of the
        # copy maps back onto whole words.
        previous = None
        for token, digits in zip(tokens, said, strict=True):
            if previous is not None and previous < base + token.start():
                edits.append((previous, base + token.start(), ""))
            edits.append((base + token.start(), base + token.end(), digits))
            previous = base + token.end()
    taken = [(s, e) for s, e, _ in edits]
    gaps = "\n" in text or "  " in text or "\t" in text or "\\n" in text
    for m in _WRAP.finditer(text) if gaps else ():
        if not any(s < m.end() and m.start() < e for s, e in taken):
            edits.append((m.start(), m.end(), " "))
    if not edits:
        return None
    edits.sort()
    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    last = 0
    length = 0
    for start, end, replacement in edits:
        if start < last:
            continue
        parts.append(text[last:start])
        length += start - last
        spans.append((length, length + len(replacement), start, end))
        parts.append(replacement)
        length += len(replacement)
        last = end
    parts.append(text[last:])
    return "".join(parts), OffsetMap(tuple(spans))


def _said(token: re.Match[str]) -> str:
    """The digits one token says ("double five" -> "55", "plus" -> "+")."""
    word = token.group().lower()
    if word == "plus":
        return "+"
    if token.group(1):
        times = 2 if token.group(1).lower() == "double" else 3
        digit = token.group(2).lower()
        return _DIGITS.get(digit, digit) * times
    return _DIGITS.get(word, word)
