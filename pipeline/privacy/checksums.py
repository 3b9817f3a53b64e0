"""Identifiers with a check: payment cards (Luhn, network prefix, printed layout), IBANs.

Checks come from ``python-stdnum``; this module decides where in a text to try them (see
:mod:`pipeline.privacy.redact` for what is found and what is not).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from stdnum import iban, luhn

# Where an IBAN may start: two letters and two check digits at the start of a word.  What
# may follow it (11-30 letters/digits, optionally in groups) is read by _IBAN_TAIL.
_IBAN_START = re.compile(r"\b[A-Za-z]{2}\d{2}")
_IBAN_TAIL = re.compile(r"(?:[ -]?[A-Za-z0-9]){11,30}")
# How IBANs are printed: capitals, compact or in groups of four.  Only a look-alike printed
# so is kept whole; "ba00 4111111111111111" is a card after a word, not a broken IBAN.
_IBAN_PRINTED = re.compile(r"[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4})+(?: [A-Z0-9]{1,3})?)")
# Digit groups joined by one space or dash: where card numbers are looked for.
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*")
_DIGIT_GROUP = re.compile(r"\d+")

#: Card number prefixes (issuer identification) of the networks in use; a Luhn-valid
#: number with another prefix is an order or reference number, not a card.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])"
    r"|35(?:2[89]|[3-8]\d)|62|5[06-9]|6\d)"
)
#: How card numbers are printed, as group sizes: one unbroken group, fours (Visa,
#: Mastercard, Discover, JCB), fours and three (19-digit Maestro/UnionPay), Amex 4-6-5 and
#: Diners 4-6-4.
_CARD_LAYOUT = re.compile(r"1[3-9]|4,4,4,4(?:,3)?|4,6,[45]")


def card_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of payment card numbers in ``text``."""
    for run in _DIGIT_RUN.finditer(text):
        printed = run.group()
        if len(printed) - printed.count(" ") - printed.count("-") < 13:
            continue  # shorter than any card
        groups = [
            (run.start() + g.start(), run.start() + g.end()) for g in _DIGIT_GROUP.finditer(printed)
        ]
        yield from _card_spans(text, groups)


def ibans(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Spans of valid IBANs, and of their look-alikes.

    A look-alike is printed as IBANs are (capitals, compact or in fours) and valid but for
    its check digits.
    """
    valid: list[tuple[int, int]] = []
    broken: list[tuple[int, int]] = []
    for start, end, ok in _iban_spans(text):
        if ok:
            valid.append((start, end))
        elif _IBAN_PRINTED.fullmatch(text, start, end):
            broken.append((start, end))
    return valid, broken


def _iban_spans(text: str) -> Iterator[tuple[int, int, bool]]:
    """Spans of IBANs valid, or valid but for their check digits (``False``)."""
    pos = 0
    while (start := _IBAN_START.search(text, pos)) is not None:
        span = None
        tail = _IBAN_TAIL.match(text, start.end())
        if tail is not None:
            # The tail can run on into the next words; the longest valid prefix that ends
            # at the end of a word wins (each country has one length, so at most one does).
            length = _iban_length(start.group()[:2].upper())
            ends = [
                end
                for end in range(start.start() + 15, tail.end() + 1)
                if text[end - 1].isalnum()
                and (end == len(text) or not text[end].isalnum())
                and (length is None or _alnum_count(text, start.start(), end) == length)
            ]
            for end in reversed(ends):
                ok = _iban_check(text[start.start() : end])
                if ok is not None:
                    span = (start.start(), end, ok)
                    break
        if span is None:
            pos = start.start() + 1
        else:
            yield span
            pos = span[1]


def _alnum_count(text: str, start: int, end: int) -> int:
    chunk = text[start:end]
    return len(chunk) - chunk.count(" ") - chunk.count("-")


@functools.cache
def _iban_length(country: str) -> int | None:
    """The IBAN length of ``country`` from python-stdnum's registry (None: not known).

    Only the candidate of the right length is checked: checking every word end (and, for
    look-alikes, recomputing check digits for each) was most of the redactor's time.
    """
    try:
        info = iban._ibandb.info(country + "00")
        structure = str(info[0][1].get("bban", ""))
    except (AttributeError, IndexError, TypeError):
        return None
    sizes = re.findall(r"(\d+)!?[anc]", structure)
    return 4 + sum(int(n) for n in sizes) if sizes else None


def _iban_check(candidate: str) -> bool | None:
    """True: a valid IBAN; False: valid but for its check digits; None: neither."""
    if iban.is_valid(candidate):
        return True
    compact = iban.compact(candidate)
    if iban.is_valid(compact[:2] + iban.calc_check_digits(compact) + compact[4:]):
        return False
    return None


def _card_spans(text: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Card numbers in one run of digit ``groups`` (``(start, end)`` of each group).

    The whole run when it is printed as cards are and passes; else the longest part
    printed as a card at the start of the run ("4111 1111 1111 1111 09 27") and at its
    end, when they pass; else, when no part is printed as a card, the whole run however
    grouped ("4111 11111111 1111").  A card in the middle of a longer run is not taken:
    long grouped numbers (parcel tracking) hold Luhn-valid stretches by chance.
    """
    # Digits right after a "+" are a country code and an international phone number
    # ("+49 1510 3146267" passes the Luhn check), never the start of a card.
    plus = groups[0][0] > 0 and text[groups[0][0] - 1] == "+"
    run = groups[1:] if plus else groups
    n = len(run)

    def printed_as_card(i: int, j: int) -> bool:
        sizes = ",".join(str(end - start) for start, end in run[i:j])
        return _CARD_LAYOUT.fullmatch(sizes) is not None

    def passes(i: int, j: int) -> bool:
        digits = "".join(text[start:end] for start, end in run[i:j])
        return (
            13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn.is_valid(digits)
        )

    if n and printed_as_card(0, n) and passes(0, n):
        return [(run[0][0], run[-1][1])]
    # A card has at most 19 digits, so at most 19 groups.
    heads = [j for j in range(min(n - 1, 19), 0, -1) if printed_as_card(0, j)]
    tails = [i for i in range(max(1, n - 19), n) if printed_as_card(i, n)]
    if heads or tails:
        spans: list[tuple[int, int]] = []
        head = next((j for j in heads if passes(0, j)), 0)
        if head:
            spans.append((run[0][0], run[head - 1][1]))
        tail = next((i for i in tails if i >= head and passes(i, n)), None)
        if tail is not None:
            spans.append((run[tail][0], run[-1][1]))
        return spans
    return [(run[0][0], run[-1][1])] if n and passes(0, n) else []
