"""Find customer identifiers in text and replace them with typed placeholders.

Checksums and numbering plans come from maintained libraries: ``python-stdnum`` (Luhn for
payment cards, ISO 13616 IBANs with each country's length and the mod-97 check, US SSNs)
and ``phonenumbers`` (country calling codes; phone numbers are read by layout in
:mod:`pipeline.privacy.phones`, assigned ranges or not).  Presidio was not used: its
analyzer needs spaCy (and a model download for names) and its email recognizer fetches a
public-suffix list over the network; its card and IBAN recognizers validate with the same
Luhn and mod-97 checks used here.

Payment cards are runs of digit groups (one space or dash between groups) that pass the
Luhn check and start with a network's prefix.  When the whole run is not a card, the
longest part printed as cards are (one group, 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4) at its
start or end is tried, so a card typed next to an expiry date ("4111 1111 1111 1111 09
27") is found; a card in the middle of a longer run is not.  A 4-4-4-4-3 run is read as
one 19-digit card when it passes, else as a 16-digit card and its security code when the
first 16 digits pass, so a mistyped 19-digit number whose first 16 digits happen to pass
is redacted too.  An IBAN whose only fault is its check digits is left whole: nothing
inside it is read as a card, postcode or anything else, so a card typed straight after
two capitals and two digits ("AT12 4111 1111 1111 1111", an Austrian IBAN's shape) is
not found.  Phone numbers: see :mod:`pipeline.privacy.phones` ("+" or "00" and a
country code, a trunk "0", an area code in brackets, NANP 3-3-4, extensions; dates,
times, amounts, percentages, prices and reference numbers are kept).

Numbers spelled out in words ("four one four seven ...", "oh seven nine double one") or
wrapped across a line break or several spaces are read in a normalised copy of the text
(:mod:`pipeline.privacy.normalise`) and redacted on the original words.  Findings that
overlap are joined, so no part of either stays in clear.

What regular expressions find, with their limits (measured on the labelled corpus of
``tests/unit/pipeline/privacy/corpus.py`` by ``bench/pii_redaction.py``):

- emails (apostrophes and plus-addressing in the local part);
- UK sort codes (``12-34-56`` anywhere, ``123456`` or ``12 34 56`` after "sort code") and
  account numbers (6-17 digits after "account", "acct" or "a/c").  A dashed date with a
  two-digit year (``12-03-24``) is read as a sort code; an account number with no such
  word before it ("from 12-34-56 / 12345678") is not found;
- US SSNs written ``123-45-6789`` anywhere, or compact/spaced after "SSN" or "social
  security"; UK National Insurance numbers by the published prefix rules (no checksum
  exists, so any ``AB123456C`` with an issued prefix is taken);
- street addresses whose street name is capitalised and ends in a street-type word
  ("221B Baker Street", "14 King's Road, Flat 3"); "12 high street" or "Flat 2, The
  Maltings" are not found.  UK postcodes in capitals only ("SW1A 1AA", not "sw1a 1aa");
- person names only after a cue ("my name is", "Mr", "Mrs", "Dr", "name:", "signed", a
  sign-off with its comma such as "Thanks, Tom"; not "thanks Tom"), and any capitalised
  word after a cue is taken ("Thanks, Monzo said...", "Dr Martens").  A name with no cue
  ("tell Sarah I called") is not found: no maintained offline library finds names in
  free text without a model download.

Each identifier becomes one placeholder word, so the redacted text is what the classifier
reads and its attention weights are over the redacted words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from stdnum.us import ssn

from pipeline.privacy.checksums import card_spans, ibans
from pipeline.privacy.normalise import normalise
from pipeline.privacy.phones import phone_spans

#: Every kind of identifier, in the order overlapping findings are preferred.
KINDS: tuple[str, ...] = (
    "EMAIL",
    "IBAN",
    "CARD",
    "NATIONAL_ID",
    "SORT_CODE",
    "ACCOUNT",
    "PHONE",
    "ADDRESS",
    "POSTCODE",
    "PERSON",
)

# The local part may hold an apostrophe (o'brien@...) but not start with one, so a quoted
# address ('jo@example.com') is found without its quote.
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-][A-Za-z0-9._%+'-]{0,63}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
)
_ANY_DIGIT = re.compile(r"\d")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
# Without dashes nine digits are as likely an order number, so they need a cue.
_SSN_CUED = re.compile(
    r"(?i:\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|num|\#))?)(?:\s+(?:is|was))?"
    r"\s*[:#]?\s*)(\d{3} ?\d{2} ?\d{4})(?![\d-])"
)
# UK National Insurance number: prefixes that HMRC never issues are excluded.
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.IGNORECASE,
)
_SORT_CODE = re.compile(
    r"(?<![\d-])\d{2}-\d{2}-\d{2}(?![\d-])"
    r"|(?i:sort\s*code)(?:\s+(?:is|was|:))?\s*:?\s*(\d{2}\s?\d{2}\s?\d{2})(?!\d)"
)
_ACCOUNT = re.compile(
    r"(?i:\b(?:account|acct|a/c)(?:\s+(?:number|no\.?|num|#))?(?:\s+(?:is|was))?\s*[:#]?\s*)"
    r"(\d{6,17})(?!\d)"
)
_STREET_TYPES = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Way|Place|Pl|Court|Ct|Boulevard|"
    "Blvd|Crescent|Cres|Terrace|Gardens|Square|Sq|Hill|Row|Mews|Parade|Grove|Park|Walk"
)
# A full stop after the street type is left out of the span (it usually ends the sentence)
# unless a flat or unit number follows it.
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z]+(?:'s)?\s+){{1,3}}(?:{_STREET_TYPES})\b"
    r"(?:\.?,?\s+(?:Apt|Apartment|Flat|Unit|Suite)\.?\s*\d+[A-Za-z]?)?"
)
_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2})\b")
# Latin letters with accents (José, Zoë, Łukasz); Latin Extended-A mixes both cases, so it
# is in both classes.  O'Brien, McDonald and Smith-Jones are one name each.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ž"
_LOWER = "a-zß-öø-ÿĀ-ž"
_NAME = (
    rf"[{_UPPER}](?:'[{_UPPER}])?[{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?"
    rf"(?:-[{_UPPER}][{_LOWER}]+)?"
)
_PERSON = re.compile(
    rf"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+|(?i:\bmy\s+name\s+is\s+|\bname\s*:\s*"
    rf"|\bsigned\s*,?\s+|\b(?:regards|thanks|cheers|sincerely)\s*,\s+))"
    rf"({_NAME}(?:\s+{_NAME}){{0,2}})"
)


@dataclass(frozen=True)
class Finding:
    """One identifier: its kind and where it is (``text[start:end]``)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Redacted:
    """A redacted text and how many identifiers of each kind were replaced."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        """Whether anything was replaced."""
        return bool(self.counts)


class Redactor:
    """Finds identifiers of ``kinds`` and replaces each with ``[KIND]``.

    ``phone_regions``: with a NANP region (US, CA, ...) among them, unmarked ten-digit
    numbers ("890-272-2363") are read as phone numbers; international numbers and national
    ones with a trunk ``0`` are found whatever the regions (recall first, issue 23).
    """

    def __init__(
        self,
        kinds: Iterable[str] = KINDS,
        phone_regions: Iterable[str] = ("GB", "US"),
    ) -> None:
        wanted = set(kinds)
        unknown = wanted - set(KINDS)
        if unknown:
            msg = f"unknown identifier kinds {sorted(unknown)}; known: {', '.join(KINDS)}"
            raise ValueError(msg)
        self.kinds = tuple(k for k in KINDS if k in wanted)
        self.phone_regions = tuple(phone_regions)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings, in text order.

        Findings that overlap are joined into one covering both, of the longer one's kind
        (of equal length: the earlier in ``KINDS``), so no part of either is left in clear
        ("+65 (73) 09-75-69" is one phone number, not a sort code after "+65 (73)").

        An IBAN printed as IBANs are (capitals, compact or in fours) whose only fault is its
        check digits is not an identifier, and nothing inside it is taken either (its
        account digits as a card, a group as a postcode).

        Numbers spelled out in words or wrapped across lines are found in a normalised
        copy (:func:`~pipeline.privacy.normalise.normalise`) and mapped back onto the
        original words; a finding of the copy that overlaps one of the text widens it.
        """
        found = self._find(text)
        copy = normalise(text)
        if copy is None:
            return found
        normal, offsets = copy
        numbers = tuple(k for k in self.kinds if k in _NUMBERS)
        extra = [
            Finding(f.kind, *offsets.span(f.start, f.end)) for f in self._find(normal, numbers)
        ]
        return _merge(found, extra)

    def _find(self, text: str, kinds: tuple[str, ...] | None = None) -> list[Finding]:
        found: list[Finding] = []
        digits = len(_ANY_DIGIT.findall(text))
        if digits == 0 and "@" not in text and "PERSON" not in self.kinds:
            return found
        valid_ibans, taken = ibans(text) if digits >= 2 else ([], [])
        for kind in self.kinds if kinds is None else kinds:
            # A cheap pre-filter: most kinds need some digits, emails an "@".
            if digits < _MIN_DIGITS.get(kind, 0) or (kind == "EMAIL" and "@" not in text):
                continue
            spans = valid_ibans if kind == "IBAN" else _FINDERS[kind](self, text)
            for start, end in spans:
                if not any(start < b and a < end for a, b in taken):
                    found.append(Finding(kind, start, end))
        return _merge(found, [])

    def redact(self, text: str) -> Redacted:
        """``text`` with every finding replaced by its placeholder."""
        findings = self.find(text)
        if not findings:
            return Redacted(text)
        parts: list[str] = []
        last = 0
        for f in findings:
            parts.append(text[last : f.start])
            parts.append(f"[{f.kind}]")
            last = f.end
        parts.append(text[last:])
        return Redacted("".join(parts), Counter(f.kind for f in findings))

    # Finders: (start, end) spans of one kind ------------------------------------------

    def _emails(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _EMAIL.finditer(text))

    def _ibans(self, text: str) -> Iterable[tuple[int, int]]:
        return ibans(text)[0]

    def _cards(self, text: str) -> Iterable[tuple[int, int]]:
        return card_spans(text)

    def _national_ids(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _SSN.finditer(text):
            if ssn.is_valid(m.group()):
                yield m.span()
        for m in _SSN_CUED.finditer(text):
            if ssn.is_valid(m.group(1).replace(" ", "")):
                yield m.span(1)
        yield from (m.span() for m in _NINO.finditer(text))

    def _sort_codes(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _SORT_CODE.finditer(text):
            yield m.span(1) if m.group(1) else m.span()

    def _accounts(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span(1) for m in _ACCOUNT.finditer(text))

    def _phones(self, text: str) -> Iterable[tuple[int, int]]:
        return phone_spans(text, self.phone_regions)

    def _addresses(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _ADDRESS.finditer(text))

    def _postcodes(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _POSTCODE.finditer(text))

    def _persons(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span(1) for m in _PERSON.finditer(text))


def _merge(found: list[Finding], extra: list[Finding]) -> list[Finding]:
    """``found`` and ``extra`` in text order, overlapping findings joined into one.

    The joined finding has the longer one's kind (of equal length, the earlier one's).
    """
    merged: list[Finding] = []
    for f in sorted([*found, *extra], key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            longer = last if last.end - last.start >= f.end - f.start else f
            merged[-1] = Finding(longer.kind, last.start, max(last.end, f.end))
        else:
            merged.append(f)
    return merged


#: Kinds made of digits: the only ones looked for again in the normalised copy (names,
#: emails and addresses are not spelled out digit by digit, nor wrapped inside).
_NUMBERS = frozenset({"IBAN", "CARD", "NATIONAL_ID", "SORT_CODE", "ACCOUNT", "PHONE"})

#: The fewest digits an identifier of each kind holds (skipped below that).
_MIN_DIGITS = {"IBAN": 2, "CARD": 13, "NATIONAL_ID": 6, "SORT_CODE": 6, "ACCOUNT": 6,
               "PHONE": 7, "ADDRESS": 1, "POSTCODE": 1}  # fmt: skip

_FINDERS = {
    "EMAIL": Redactor._emails,
    "IBAN": Redactor._ibans,
    "CARD": Redactor._cards,
    "NATIONAL_ID": Redactor._national_ids,
    "SORT_CODE": Redactor._sort_codes,
    "ACCOUNT": Redactor._accounts,
    "PHONE": Redactor._phones,
    "ADDRESS": Redactor._addresses,
    "POSTCODE": Redactor._postcodes,
    "PERSON": Redactor._persons,
}
