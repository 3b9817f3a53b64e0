"""Phone numbers as people write them, assigned today or not.

What looks like a phone number is one (issue 23: recall first).  A run of digit groups is
a phone number when it is written the way phone numbers are written:

- ``+`` and 7-15 digits (E.164's longest), whatever the grouping, brackets, ``(0)``;
- ``00``, a country calling code and 7-15 digits in all;
- a trunk ``0`` and 8-12 digits in all (UK, France, Germany, Ireland, Australia, Japan,
  India, ...), compact or grouped with spaces, dots or dashes;
- an area code in brackets and 8-12 digits in all ("(11) 96123-4567", "(020) 7946 0958");
- with a NANP region among ``regions``: ten digits, an optional leading ``1``, an area code
  starting 2-9, compact or grouped 3-3-4 ("890-272-2363", "1 890 272 2363");
- nine digits grouped 3-3-3 or 3-2-2-2 starting 5-9 (Spanish, Polish and Italian mobiles);
- any grouping of 7-15 digits right after a phone word ("Telephone: 495 777-34-77");
- followed by an extension ("x123", "ext. 123", "extension 123") taken with it.

What must survive is cut out first: dates (12/03/2024, 2024-11-03, 03.11.2024), times,
amounts with a currency, percentages and prices with two decimals are masked before runs
are read, and a run glued to a word ("ORD-2024-586528") or of another shape ("2023-573696",
a 9-digit order number, a 22-digit tracking number) is no phone number, nor is a number
right after a reference word ("order 085661419", "ref: 0123456789", "invoice #...",
"business ID 0187274-0").

``phonenumbers`` gives the country calling codes (for ``00`` numbers) and the NANP regions;
its own matcher is not used: it takes only numbers valid or possible in a region's plan
(so an unassigned range or a mistyped number is missed, issue 23) and costs about 0.2 ms a
message for two regions, as much as the whole redactor's budget (bench/redaction_accuracy.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import phonenumbers

_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# Three digits after "00" that start with a country calling code.
_CODE_PREFIXES = frozenset(
    f"{i:03d}" for i in range(1000) if any(f"{i:03d}"[:k] in _COUNTRY_CODES for k in (1, 2, 3))
)
_NANP = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])

# Digit groups joined as phone numbers are: one space, dot, dash or slash (a dash may have
# spaces around it), or none around a bracketed group.
_GROUP = r"(?:\(\d{1,5}\)|\d+)"
_RUN = re.compile(
    r"(?<![\w@/+.,\-])(?:\+[ ]?)?" + _GROUP
    + r"(?:(?:[ ]?[-.][ ]?|[ ]|/)\d+|[ ]?\(\d{1,5}\)|(?<=\))[-. ]?\d+)*(?=x\d|[^\w@]|$)"
)  # fmt: skip
_EXTENSION = re.compile(r",?[ ]?(?:x|ext\.?|extn\.?|extension)[ ]?\d{1,6}\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"\b(?:order|ref|reference|invoice|ticket|case|tracking|parcel|booking|policy|claim|"
    r"transaction|txn|(?:business|company|identity|registration|vat)[ ]?(?:id|code))"
    r"(?:[ ]?(?:no\.?|number|num|id))?[ ]?[:#]?[ ]?$",
    re.IGNORECASE,
)
# A word that says a phone number follows: then any grouping of 7-15 digits is one
# ("Telephone: 495 777-34-77").
_PHONE_CUE = re.compile(
    r"\b(?:phone|telephone|tel|mobile|cell|fax|whatsapp|call|ring|text|sms|reach)\b[^\d\n]{0,20}$",
    re.IGNORECASE,
)
_SEVEN_DIGITS = re.compile(r"\d(?:\D{0,3}\d){6}")
# What must survive, masked before runs are read.  Guards keep a dotted or dashed phone
# number ("06.12.34.56.78", "090-1234-5678") from reading as a date or a price.
_KEEP = re.compile(
    (
        r"(?<![\d./\-)])(?<!\) )(?:_D([./\-])_D\1(?:\d{4}|\d{2})|\d{4}([./\-])_D\2_D)"
        r"(?![./\-]?\d)"  # dates
        r"|(?<!\d)(?:0?[1-9]|1[0-2])[./](?:19|20)\d{2}(?![./\-]?\d)"  # month and year
        r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"  # times
        r"|[£$€¥₹][ ]?\d{1,3}(?:[ ,.]\d{3}(?!\d))*(?:[.,]\d{1,2})?"  # amounts
        r"|(?<![\d.])[-+]?\d[\d.,]*[ ]?(?:%|EUR\b|USD\b|GBP\b|CHF\b|p\b)"  # percentages, amounts
        r"|(?<![\d.,])\d+[.,]\d{1,2}(?![\d.,]?\d)"  # prices
    ).replace("_D", r"(?:0?[1-9]|[12]\d|3[01])")
)


def phone_spans(text: str, regions: Iterable[str] = ("GB", "US")) -> Iterator[tuple[int, int]]:
    """Spans of phone numbers in ``text`` (see the module docstring for what counts)."""
    if _SEVEN_DIGITS.search(text) is None:
        return
    nanp = any(region in _NANP for region in regions)
    masked = _KEEP.sub(lambda m: "_" * len(m.group()), text)
    for m in _RUN.finditer(masked):
        run = m.group()
        digits = sum(c.isdigit() for c in run)
        if digits < 7:
            continue
        before = max(0, m.start() - 30)
        if not run.startswith("+") and _REFERENCE.search(text, before, m.start()):
            continue
        if not _is_phone(run, nanp=nanp) and not (
            digits <= 15 and _PHONE_CUE.search(text, before, m.start())
        ):
            continue
        end = m.end()
        ext = _EXTENSION.match(masked, end)
        if ext is not None:
            end = ext.end()
        yield m.start(), end


def _is_phone(run: str, *, nanp: bool) -> bool:
    digits = "".join(c for c in run if c.isdigit())
    n = len(digits)
    if run.startswith("+"):
        return 7 <= n <= 16  # 15 digits, and a "(0)" some write after the country code
    rest = digits[2:]
    if digits.startswith("00") and 7 <= len(rest) <= 15 and rest[:3] in _CODE_PREFIXES:
        return True
    if run.startswith("(") or digits.startswith("0"):
        return 8 <= n <= 12
    sizes = [len(g) for g in re.findall(r"\d+", run)]
    if nanp:
        national = digits[1:] if n == 11 and digits[0] == "1" else digits
        grouped = sizes[1:] if n == 11 and sizes[0] == 1 else sizes
        if (
            len(national) == 10
            and national[0] in "23456789"
            and grouped in ([10], [3, 3, 4], [3, 7], [11])
        ):
            return True
    return n == 9 and digits[0] in "56789" and sizes in ([3, 3, 3], [3, 2, 2, 2])
