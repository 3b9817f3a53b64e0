"""Find customer identifiers in text and replace them with typed placeholders.

Checksums and numbering plans come from maintained libraries: ``python-stdnum`` (Luhn for
payment cards, ISO 13616 IBANs with each country's length and the mod-97 check, US SSNs)
and ``phonenumbers`` (Google's libphonenumber: international and national formats, valid
numbers only).  Presidio was not used: its analyzer needs spaCy (and a model download for
names) and its email recognizer fetches a public-suffix list over the network; its card
and IBAN recognizers validate with the same Luhn and mod-97 checks used here.

What regular expressions find, with their limits (measured in ``bench/pii_redaction.py``):
emails; UK sort codes (``12-34-56``) and account numbers (6-17 digits after a word such as
"account"); UK National Insurance numbers (the published prefix rules); street addresses
("221B Baker Street", with a street-type word) and UK postcodes; person names only after a
cue ("my name is", "Mr", "Mrs", "Dr", "name:", "signed", a sign-off).  A name with no cue
("tell Sarah I called") is not found: no maintained offline library finds names in free text
without a model download.

Each identifier becomes one placeholder word, so the redacted text is what the classifier
reads and its attention weights are over the redacted words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

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

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
)
# Two letters, two check digits, then 11-30 letters/digits, optionally in groups of four.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}\b")
# 13-19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
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
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){{1,3}}(?:{_STREET_TYPES})\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Flat|Unit|Suite)\.?\s*\d+[A-Za-z]?)?"
)
_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2})\b")
_NAME = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_PERSON = re.compile(
    rf"(?:\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+|(?i:\bmy\s+name\s+is\s+|\bname\s*:\s*"
    rf"|\bsigned\s*,?\s+|\b(?:regards|thanks|cheers|sincerely)\s*,\s+))"
    rf"({_NAME}(?:\s+{_NAME}){{0,2}})"
)

#: Card number prefixes (issuer identification) of the networks in use; a Luhn-valid
#: number with another prefix is an order or reference number, not a card.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])"
    r"|35(?:2[89]|[3-8]\d)|62|5[06-9]|6\d)"
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

    ``phone_regions`` are the ISO country codes whose national formats are read as phone
    numbers (international ``+CC`` numbers are found whatever the region).
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
        """Non-overlapping findings, in text order (earlier kinds in ``KINDS`` win overlaps)."""
        found: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for kind in self.kinds:
            for start, end in _FINDERS[kind](self, text):
                if any(start < b and a < end for a, b in taken):
                    continue
                taken.append((start, end))
                found.append(Finding(kind, start, end))
        return sorted(found, key=lambda f: f.start)

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
        for m in _IBAN.finditer(text):
            # The pattern can run on into the next words; the longest valid prefix wins.
            raw = m.group()
            ends = [i + 1 for i, c in enumerate(raw) if c.isalnum()]
            for end in reversed(ends):
                if end >= 15 and iban.is_valid(raw[:end]):
                    yield m.start(), m.start() + end
                    break

    def _cards(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
                yield m.span()

    def _national_ids(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _SSN.finditer(text):
            if ssn.is_valid(m.group()):
                yield m.span()
        yield from (m.span() for m in _NINO.finditer(text))

    def _sort_codes(self, text: str) -> Iterable[tuple[int, int]]:
        for m in _SORT_CODE.finditer(text):
            yield m.span(1) if m.group(1) else m.span()

    def _accounts(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span(1) for m in _ACCOUNT.finditer(text))

    def _phones(self, text: str) -> Iterable[tuple[int, int]]:
        seen: set[tuple[int, int]] = set()
        for region in self.phone_regions:
            matcher = phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.VALID
            )
            for match in matcher:
                span = (match.start, match.end)
                if span not in seen:
                    seen.add(span)
                    yield span

    def _addresses(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _ADDRESS.finditer(text))

    def _postcodes(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span() for m in _POSTCODE.finditer(text))

    def _persons(self, text: str) -> Iterable[tuple[int, int]]:
        return (m.span(1) for m in _PERSON.finditer(text))


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
