"""A labelled corpus of customer-service chat lines for measuring PII redaction.

``corpus()`` returns the same few hundred :class:`Sample` strings on every call (one fixed
seed): banking chat lines (declined cards, refunds, transfers, account changes) that embed
customer identifiers, each with the identifiers a redactor must find as ``(kind, exact
substring)``, and look-alikes that must be left alone (order numbers, amounts, dates,
tracking numbers, cards failing the Luhn check, IBANs with wrong check digits).

Valid identifiers come from the libraries that define them, never from hand-written checks:
card check digits from ``stdnum.luhn``, IBAN check digits from ``stdnum.iban`` (and each
country's own rules through ``iban.is_valid``), SSNs checked by ``stdnum.us.ssn`` and phone
numbers kept only when ``phonenumbers.is_valid_number`` accepts them.

Samples in the group ``"limit"`` hold identifiers that the redactor is known to miss or
look-alikes that it is known to take (see ``pipeline/privacy/redact.py``); they count in
:func:`score` so that the limits show in the measured precision and recall.

:func:`score` compares a redactor's findings with the labels, per kind; the tests and
``bench/pii_redaction.py`` both use it.
"""

from __future__ import annotations

import functools
import random
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

from pipeline.privacy import KINDS, Redactor

SEED = 20_241_203

#: Kinds whose identifiers carry a checksum or a validated number format (US SSN only for
#: NATIONAL_ID: UK National Insurance numbers have no checksum).
CHECKSUM_KINDS = ("CARD", "IBAN", "NATIONAL_ID")


@dataclass(frozen=True)
class Sample:
    """One chat line, the identifiers in it and the look-alikes that must stay."""

    text: str
    expected: tuple[tuple[str, str], ...]
    decoys: tuple[str, ...] = ()
    group: str = ""


@dataclass
class KindScore:
    """Counts for one kind over a corpus; precision and recall are 1.0 when undefined."""

    support: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        """True positives over everything the redactor reported as this kind."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """True positives over the labelled identifiers of this kind."""
        return self.tp / self.support if self.support else 1.0


@dataclass(frozen=True)
class Comparison:
    """A redactor's findings on one sample against its labels."""

    hits: list[tuple[str, str]]
    misses: list[tuple[str, str]]
    spurious: list[tuple[str, str]]


def compare(redactor: Redactor, sample: Sample) -> Comparison:
    """Findings that match a label exactly (kind and substring), labels missed, and extras."""
    found = Counter((f.kind, sample.text[f.start : f.end]) for f in redactor.find(sample.text))
    wanted = Counter(sample.expected)
    hits = found & wanted
    return Comparison(
        list(hits.elements()), list((wanted - hits).elements()), list((found - hits).elements())
    )


def score(redactor: Redactor, samples: Iterable[Sample]) -> dict[str, KindScore]:
    """Per-kind support, true/false positives and false negatives, for every kind in KINDS.

    A finding counts as a true positive only with the labelled kind and exactly the
    labelled substring; a span one character off is one false positive and one false
    negative.
    """
    scores = {kind: KindScore() for kind in KINDS}
    for sample in samples:
        result = compare(redactor, sample)
        for kind, _ in sample.expected:
            scores[kind].support += 1
        for kind, _ in result.hits:
            scores[kind].tp += 1
        for kind, _ in result.misses:
            scores[kind].fn += 1
        for kind, _ in result.spurious:
            scores[kind].fp += 1
    return scores


def build(seed: int) -> list[Sample]:
    """The labelled samples drawn with ``seed`` (the same seed, the same samples)."""
    return _Builder(random.Random(seed)).build()


@functools.cache
def _corpus() -> tuple[Sample, ...]:
    return tuple(build(SEED))


def corpus() -> list[Sample]:
    """The labelled samples of the fixed ``SEED``, identical on every call."""
    return list(_corpus())


# Identifiers -----------------------------------------------------------------------------

#: Network, issuer prefixes, length, printed group layout.
NETWORKS: tuple[tuple[str, tuple[str, ...], int, tuple[int, ...]], ...] = (
    ("Visa", ("4",), 16, (4, 4, 4, 4)),
    ("Mastercard", ("51", "52", "53", "54", "55"), 16, (4, 4, 4, 4)),
    ("Mastercard 2-series", ("2221", "2320", "2500", "2630", "2720"), 16, (4, 4, 4, 4)),
    ("Amex", ("34", "37"), 15, (4, 6, 5)),
    ("Discover", ("6011", "644", "65"), 16, (4, 4, 4, 4)),
    ("Maestro", ("6759", "5018", "6304", "5020"), 19, (4, 4, 4, 4, 3)),
    ("UnionPay", ("62",), 19, (4, 4, 4, 4, 3)),
    ("JCB", ("3528", "3589"), 16, (4, 4, 4, 4)),
    ("Diners", ("36",), 14, (4, 6, 4)),
)


def print_card(number: str, layout: tuple[int, ...], style: str) -> str:
    """``number`` as a customer types it: ``compact``, or in ``layout`` groups joined by
    ``spaces`` or ``dashes``."""
    if style == "compact":
        return number
    groups, pos = [], 0
    for size in layout:
        groups.append(number[pos : pos + size])
        pos += size
    return (" " if style == "spaces" else "-").join(groups)


#: Country and BBAN layout (``a`` capital letter, ``n`` digit, ``c`` either), per ISO 13616.
_IBAN_LAYOUTS = {
    "GB": "a" * 4 + "n" * 14, "DE": "n" * 18, "FR": "n" * 10 + "c" * 11 + "n" * 2,
    "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12, "NL": "a" * 4 + "n" * 10,
    "IE": "a" * 4 + "n" * 14, "BE": "n" * 12, "CH": "n" * 5 + "c" * 12,
    "PL": "n" * 24, "AT": "n" * 16, "PT": "n" * 21,
    "SE": "n" * 20, "DK": "n" * 14, "FI": "n" * 14,
    "LU": "n" * 3 + "c" * 13, "NO": "n" * 11,
}  # fmt: skip
_CHARS = {
    "a": string.ascii_uppercase,
    "n": string.digits,
    "c": string.ascii_uppercase + "0123456789",
}

_FIRST = tuple(
    "Priya|Tom|Sarah|Mohammed|Aisha|Sean|Chloe|Wojciech|José|Zoë|Mary-Jane|Liam|"
    "Oluwaseun|Hannah|Dmitri|Fiona|Raj|Emily|Kwame|Łukasz|Niamh|Giulia|Ahmed|Grace".split("|")
)
_LAST = tuple(
    "Patel|Smith|O'Brien|Nowak|García|Clarke|McDonald|Okafor-Smith|Khan|Jones|Murphy|"
    "Rossi|Williams|D'Souza|Kowalski|MacLeod|Evans|Nguyen|Taylor|Wójcik".split("|")
)
_STREETS = tuple(
    "Baker|King's|Queen|High|Station|Church|Mill|Park|Victoria|Elm|Oak Tree|"
    "St Mary's|Kingsley|Albert|Green".split("|")
)
_STREET_TYPES = tuple(
    "Street|Road|Avenue|Lane|Close|Way|Place|Court|Crescent|Terrace|Gardens|Square|"
    "Grove|Mews|Drive|St|Rd".split("|")
)
#: Postcode area and its post town.
_POSTCODE_AREAS = {
    "SW": "London", "EC": "London", "N": "London", "E": "London", "M": "Manchester",
    "B": "Birmingham", "LS": "Leeds", "G": "Glasgow", "EH": "Edinburgh", "CF": "Cardiff",
    "BS": "Bristol", "OX": "Oxford", "YO": "York", "NE": "Newcastle upon Tyne",
}  # fmt: skip
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
_DOMAINS = tuple(
    "gmail.com|outlook.com|hotmail.co.uk|yahoo.co.uk|btinternet.com|icloud.com|"
    "proton.me|mail.example.org|student.ed.ac.uk|staff.uni-leeds.ac.uk|"
    "example.photography|smith-family.london|web.de|orange.fr|eircom.net|"
    "bigpond.com.au".split("|")
)
# Valid prefixes of UK National Insurance numbers (HMRC's published rules).
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_NEVER = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


class _Identifiers:
    """Valid and invalid identifiers drawn from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    # Cards

    def card(self, network: int) -> tuple[str, tuple[int, ...]]:
        """Luhn-valid compact number of ``NETWORKS[network]`` and its group layout."""
        _, prefixes, length, layout = NETWORKS[network]
        body = self.rng.choice(prefixes)
        body += self.digits(length - 1 - len(body))
        number = body + luhn.calc_check_digit(body)
        assert luhn.is_valid(number)
        return number, layout

    def bad_card(self, network: int) -> tuple[str, tuple[int, ...]]:
        """Like :meth:`card` but with a wrong check digit.

        A 19-digit number whose first 16 digits pass the Luhn check is not drawn: printed
        4-4-4-4-3 it reads as well as a 16-digit card followed by its security code, which
        the redactor takes on purpose.
        """
        while True:
            number, layout = self.card(network)
            wrong = str((int(number[-1]) + self.rng.randint(1, 9)) % 10)
            number = number[:-1] + wrong
            assert not luhn.is_valid(number)
            if len(number) < 19 or not luhn.is_valid(number[:16]):
                return number, layout

    # IBANs

    def iban(self, country: str) -> str:
        """A compact IBAN that ``stdnum.iban`` accepts (national check digits included)."""
        for _ in range(10_000):
            bban = "".join(self.rng.choice(_CHARS[c]) for c in _IBAN_LAYOUTS[country])
            number = country + iban.calc_check_digits(country + "00" + bban) + bban
            if iban.is_valid(number):
                return number
        msg = f"no valid {country} IBAN drawn"
        raise AssertionError(msg)

    def bad_iban(self, country: str) -> str:
        number = self.iban(country)
        check = (int(number[2:4]) - 2 + self.rng.randint(1, 95)) % 97 + 2
        number = f"{number[:2]}{check:02d}{number[4:]}"
        assert not iban.is_valid(number)
        return number

    @staticmethod
    def grouped(number: str) -> str:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))

    # Phones

    def phone(self, region: str, national: str, length: int) -> phonenumbers.PhoneNumber:
        """A valid number of ``region``: ``length`` digits starting with ``national``."""
        for _ in range(10_000):
            number = phonenumbers.parse(national + self.digits(length - len(national)), region)
            if phonenumbers.is_valid_number(number):
                return number
        msg = f"no valid {region} number starting {national}"
        raise AssertionError(msg)

    def print_phone(self, number: phonenumbers.PhoneNumber, style: str) -> str:
        fmt = phonenumbers.PhoneNumberFormat
        national = phonenumbers.format_number(number, fmt.NATIONAL)
        international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
        nsn = phonenumbers.national_significant_number(number)
        area, _, rest = national.partition(" ")
        cc = f"+{number.country_code}"
        printed = {
            "national": national,
            "compact": national.replace(" ", ""),
            "international": international,
            "e164": phonenumbers.format_number(number, fmt.E164),
            "trunk0": f"{cc} (0){international.removeprefix(cc)}",
            "brackets": f"({area}) {rest}",
            "00": "00" + international[1:],
            "dashes": (
                f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
                if number.country_code == 1
                else f"0{nsn[:4]}-{nsn[4:7]}-{nsn[7:]}"
            ),
            "loose": f"0{nsn[:3]} {nsn[3:6]} {nsn[6:]}",
            "dots": f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}",
            "1-": f"1-{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}",
            "+1 spaces": f"+1 {nsn[:3]} {nsn[3:6]} {nsn[6:]}",
            "+1 brackets": f"+1 ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
        }[style]
        region = phonenumbers.region_code_for_number(number)
        assert phonenumbers.is_valid_number(phonenumbers.parse(printed, region)), printed
        return printed

    # The rest

    def ssn(self) -> str:
        while True:
            area = self.rng.choice([a for a in range(1, 900) if a != 666])
            number = f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"
            if ssn.is_valid(number):
                return number

    def nino(self, spaced: bool) -> str:
        prefix = "GB"
        while prefix in _NINO_NEVER:
            prefix = self.rng.choice(_NINO_FIRST) + self.rng.choice(_NINO_SECOND)
        d = self.digits(6)
        suffix = self.rng.choice("ABCD")
        return f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {suffix}" if spaced else prefix + d + suffix

    def name(self) -> tuple[str, str]:
        return self.rng.choice(_FIRST), self.rng.choice(_LAST)

    def email(self) -> str:
        first, last = (s.lower().replace("-", "") for s in self.name())
        first = first.translate(str.maketrans("éëłó", "eelo"))
        last = last.translate(str.maketrans("íéó", "ieo"))
        local = self.rng.choice(
            [
                f"{first}.{last}",
                f"{first}{last}{self.rng.randint(1950, 2005)}",
                f"{first[0]}.{last}+{self.rng.choice(['bank', 'refunds', 'statements'])}",
                f"{first}_{last}",
                f"{last}.{first}-{self.rng.randint(2, 99)}",
                f"{first.capitalize()}.{last.capitalize()}",
            ]
        )
        return f"{local}@{self.rng.choice(_DOMAINS)}"

    def sort_code(self) -> str:
        return f"{self.digits(2)}-{self.digits(2)}-{self.digits(2)}"

    def account(self) -> str:
        return str(self.rng.randint(1, 9)) + self.digits(7)

    def address(self, flat: bool = False) -> str:
        number = f"{self.rng.randint(1, 250)}{self.rng.choice(['', '', '', 'A', 'B'])}"
        street = f"{self.rng.choice(_STREETS)} {self.rng.choice(_STREET_TYPES)}"
        unit = f", Flat {self.rng.randint(1, 12)}" if flat else ""
        return f"{number} {street}{unit}"

    def postcode(self) -> tuple[str, str]:
        """A postcode and its post town."""
        area = self.rng.choice(list(_POSTCODE_AREAS))
        district = str(self.rng.randint(1, 20 if len(area) == 1 else 9))
        inward = f"{self.rng.randint(0, 9)}{self.rng.choice(_INWARD)}{self.rng.choice(_INWARD)}"
        return f"{area}{district} {inward}", _POSTCODE_AREAS[area]


# Chat lines ------------------------------------------------------------------------------

Slot = tuple[str | None, str]


def pii(kind: str, value: str) -> Slot:
    """A slot holding an identifier of ``kind`` that must be found."""
    return kind, value


def decoy(value: str) -> Slot:
    """A slot holding a look-alike that must not be redacted."""
    return None, value


_CARD_LINES = (
    "My card {x} was declined at the petrol station this morning, can you check why?",
    "Hi, I need a refund for the £49.99 taken from {x} on 12/03/2024.",
    "Please block card {x} immediately, I think it was stolen last night.",
    "The card number is {x}.",
    "{x} keeps getting declined online even though I have money in the account",
    "why was my payment of $120.00 with {x} refused??",
    "card no {x} exp 09/27, the merchant says the transaction failed",
    "can you cancel {x}? i've already ordered a replacement",
    "I was charged twice on {x} for the same order, please refund one of them",
    "Contactless stopped working on my card ({x}) since Tuesday.",
    "Is there a hold on {x}? The ATM at 14:30 said card declined",
    "my new card {x} has not been activated yet",
    "Refund went to {x}, not my current account - why?",
    "Card: {x}",
    "card number {x} 09/27, the website says it is invalid",
)
_BAD_CARD_LINES = (
    "My loyalty number is {x}, the points are missing.",
    "Voucher code {x} didn't work at checkout",
    "The reference on the letter is {x}, what does it mean?",
    "Gift card serial {x} shows a zero balance",
    "Is {x} the case number for my complaint?",
)
_IBAN_LINES = (
    "Please send the refund to my IBAN {x} as soon as possible.",
    "The transfer to {x} failed, the beneficiary says nothing arrived",
    "I want to change the receiving account to {x}, thanks",
    "IBAN: {x}",
    "Beneficiary IBAN {x} (my landlord), amount 1.250,00 EUR",
    "can you confirm the SEPA payment to {x} went through on 2024-11-03?",
    "my salary now goes to {x}.",
    "Why is there a £25 fee for sending money to {x}?",
    "Please update the direct debit: new IBAN is {x} and mandate ref MND-44821",
)
_BAD_IBAN_LINES = (
    "The supplier sent me {x} but your app says the IBAN is wrong",
    "Transfer rejected: invalid IBAN {x}. What did I do wrong?",
    "I copied {x} from the invoice, is that right?",
)
_EMAIL_LINES = (
    "You can email me at {x} with the dispute form.",
    "My new email address is {x}.",
    "please send the statement to {x}",
    "Email: {x}",
    "I never got the reset link at {x}, can you resend?",
    "<{x}> is the address on file, is that right?",
    "Change my login email to {x} please, the old one is closed",
    "contact me on {x} or by post",
)
_PHONE_LINES = (
    "Call me back on {x} please",
    "My number changed to {x}, can you update my account?",
    "(mobile: {x})",
    "Text the code to {x}.",
    "I'm abroad at the moment, reach me at {x}",
    "phone {x} - best after 6pm",
    "The one-time passcode never arrives on {x}!",
    "Please ring {x} regarding the refund",
    "Your app still shows my old number, the new one is {x}.",
    "You can call me ({x}) about the chargeback",
)
#: Region, national prefix, national length, print styles.
_PHONE_PLANS: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("GB", "7", 10, ("national", "compact", "international", "e164", "trunk0", "00")),
    ("GB", "7", 10, ("national", "international", "loose", "dashes")),
    ("GB", "20", 10, ("national", "brackets", "international", "trunk0")),
    ("GB", "161", 10, ("national", "brackets")),
    ("GB", "113", 10, ("national", "international")),
    ("GB", "131", 10, ("national", "brackets")),
    ("GB", "121", 10, ("national", "trunk0")),
    ("GB", "1865", 10, ("national", "brackets")),
    ("US", "415", 10, ("national", "dashes", "dots", "1-", "+1 spaces", "+1 brackets")),
    ("US", "212", 10, ("national", "dots", "international", "e164")),
    ("US", "617", 10, ("national", "dashes", "+1 spaces")),
    ("US", "312", 10, ("national", "+1 brackets", "1-")),
    ("US", "206", 10, ("dashes", "international")),
    ("FR", "6", 9, ("international", "e164")),
    ("FR", "1", 9, ("international",)),
    ("DE", "151", 11, ("international", "e164")),
    ("DE", "30", 10, ("international",)),
    ("IE", "85", 9, ("international", "e164")),
    ("IE", "87", 9, ("international",)),
    ("AU", "4", 9, ("international", "e164")),
)
_LOOKALIKE_LINES = (
    ("Order {x} still hasn't arrived, it's been 10 days", "order"),
    ("Where is {x}? Tracking hasn't moved.", "ord"),
    ("I was charged {x} instead of £12.50", "amount"),
    ("The payment on {x} bounced and I got a fee", "date"),
    ("The transfer was sent at {x} yesterday", "time"),
    ("Why did my interest rate go up to {x}?", "percent"),
    ("Royal Mail tracking {x} says delivered but no card", "royalmail"),
    ("UPS tracking number {x}", "ups"),
    ("USPS tracking: {x}", "usps"),
    ("Transaction reference {x} is missing from my statement", "txn"),
    ("I've been a customer since {x}, this is ridiculous", "year"),
    ("The last four digits are {x} if that helps", "last4"),
    ("I tried {x} times and the app locked me out", "short"),
)
_BAD_SSNS = (
    "000-12-3456",
    "666-45-1234",
    "912-34-5678",
    "123-00-4567",
    "123-45-0000",
    "078-05-1120",
)
_BAD_NINOS = ("QQ 12 34 56 C", "BG123456A", "GB 12 34 56 A", "DA123456B", "AB123456E")


class _Builder:
    """Writes the corpus: identifiers of every kind in chat lines, look-alikes, mixes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ids = _Identifiers(rng)
        self.samples: list[Sample] = []

    def add(self, group: str, template: str, **slots: Slot) -> None:
        text = template.format(**{key: value for key, (_, value) in slots.items()})
        labelled = [(kind, value) for kind, value in slots.values() if kind is not None]
        for _, value in slots.values():
            assert value in text, (value, text)
        expected = tuple(sorted(labelled, key=lambda kv: text.index(kv[1])))
        decoys = tuple(value for kind, value in slots.values() if kind is None)
        self.samples.append(Sample(text, expected, decoys, group))

    def line(self, lines: tuple[str, ...]) -> str:
        return self.rng.choice(lines)

    def build(self) -> list[Sample]:
        for part in (
            self.cards, self.ibans, self.emails, self.phones, self.bank_details,
            self.national_ids, self.names, self.addresses, self.lookalikes, self.mixed,
            self.limits,
        ):  # fmt: skip
            part()
        return self.samples

    def card(self) -> str:
        number, layout = self.ids.card(self.rng.randrange(len(NETWORKS)))
        return print_card(number, layout, self.rng.choice(["compact", "spaces", "dashes"]))

    def cards(self) -> None:
        for network in range(len(NETWORKS)):
            for style in ("compact", "spaces", "dashes") * 3:
                number, layout = self.ids.card(network)
                card = print_card(number, layout, style)
                self.add("card", self.line(_CARD_LINES), x=pii("CARD", card))
            for style in ("compact", "spaces", "dashes"):
                number, layout = self.ids.bad_card(network)
                bad = print_card(number, layout, style)
                self.add("lookalike", self.line(_BAD_CARD_LINES + _CARD_LINES), x=decoy(bad))

    def ibans(self) -> None:
        for country in _IBAN_LAYOUTS:
            for grouped in (False, True, self.rng.random() < 0.5):
                number = self.ids.iban(country)
                number = self.ids.grouped(number) if grouped else number
                self.add("iban", self.line(_IBAN_LINES), x=pii("IBAN", number))
            bad = self.ids.bad_iban(country)
            bad = self.ids.grouped(bad) if self.rng.random() < 0.5 else bad
            self.add("lookalike", self.line(_BAD_IBAN_LINES), x=decoy(bad))

    def emails(self) -> None:
        for _ in range(36):
            self.add("email", self.line(_EMAIL_LINES), x=pii("EMAIL", self.ids.email()))
        for _ in range(4):
            self.add(
                "email",
                "change my email from {a} to {b}, the old one was hacked",
                a=pii("EMAIL", self.ids.email()),
                b=pii("EMAIL", self.ids.email()),
            )

    def phones(self) -> None:
        for region, national, length, styles in _PHONE_PLANS:
            for style in styles * 2:
                number = self.ids.phone(region, national, length)
                printed = self.ids.print_phone(number, style)
                self.add("phone", self.line(_PHONE_LINES), x=pii("PHONE", printed))

    def bank_details(self) -> None:
        for i in range(30):
            sc, acct = self.ids.sort_code(), self.ids.account()
            compact = sc.replace("-", "")
            spaced = sc.replace("-", " ")
            template, code = [
                ("My sort code is {sc} and account number {acct}, did the transfer fail?", sc),
                ("Sort code {sc}, acct {acct}", compact),
                ("pay it into a/c {acct} sort code: {sc} please", spaced),
                ("sort code is {sc} and the account no. {acct} is the new one", sc),
                ("Refund to account #{acct}, sort code {sc}.", compact),
                ("my account number: {acct} (sort code {sc}) was debited twice", sc),
            ][i % 6]
            self.add("bank", template, sc=pii("SORT_CODE", code), acct=pii("ACCOUNT", acct))

    def national_ids(self) -> None:
        for i in range(20):
            number = self.ids.ssn()
            template, printed = [
                ("My SSN is {x}, do you need anything else for the account?", number),
                ("Social security number: {x}", number),
                ("For the W-9 form: {x}.", number),
                ("SSN {x}", number.replace("-", "")),
                ("my social security number is {x}", number.replace("-", " ")),
            ][i % 5]
            self.add("ssn", template, x=pii("NATIONAL_ID", printed))
        for i in range(20):
            template = [
                "My National Insurance number is {x}.",
                "NI number: {x}",
                "ni no {x} for the ISA application",
                "Here is my NINO {x}, please update the record",
            ][i % 4]
            self.add("nino", template, x=pii("NATIONAL_ID", self.ids.nino(spaced=i % 2 == 0)))
        for bad in _BAD_SSNS + _BAD_NINOS:
            template = self.line(("Case number {x} was closed without a reply", "Ref: {x}"))
            self.add("lookalike", template, x=decoy(bad))

    def names(self) -> None:
        # Each line and which part of the name its cue introduces.
        lines = (
            ("Hi, my name is {x} and my card was declined today.", "full"),
            ("This is Mr {x}, I called yesterday about a refund.", "last"),
            ("Mrs {x} here - the transfer still hasn't arrived", "last"),
            ("Account holder name: {x}", "full"),
            ("Please cancel the direct debit. Thanks, {x}", "first"),
            ("Kind regards, {x}", "full"),
            ("Dr {x} is my husband, can he be added to the account?", "full"),
            ("that's all for now. Cheers, {x}", "first"),
            ("signed, {x}", "full"),
            ("Ms {x} asked me to call about the mortgage", "last"),
        )
        for i in range(30):
            first, last = self.ids.name()
            template, part = lines[i % len(lines)]
            name = {"full": f"{first} {last}", "first": first, "last": last}[part]
            self.add("person", template, x=pii("PERSON", name))

    def addresses(self) -> None:
        for i in range(30):
            address = pii("ADDRESS", self.ids.address(flat=i % 5 == 0))
            code, town = self.ids.postcode()
            postcode = pii("POSTCODE", code)
            match i % 6:
                case 0:
                    self.add(
                        "address",
                        f"Please update my address to {{a}}, {town} {{p}}.",
                        a=address,
                        p=postcode,
                    )
                case 1:
                    self.add("address", "I've moved to {a}.", a=address)
                case 2:
                    self.add(
                        "address",
                        "Send the replacement card to {a}, {p} please",
                        a=address,
                        p=postcode,
                    )
                case 3:
                    self.add("address", f"my old address was {{a}}, {town}", a=address)
                case 4:
                    self.add("address", "Statements still go to {a} even though I moved", a=address)
                case _:
                    self.add("address", "The postcode is {p}, the card never arrived", p=postcode)

    def lookalike(self, kind: str) -> str:
        r, d = self.rng.randint, self.ids.digits
        return {
            "order": lambda: str(r(100_000_000, 999_999_999)),
            "ord": lambda: f"ORD-{r(2019, 2025)}-{d(6)}",
            "amount": lambda: self.rng.choice(
                [f"£{r(1, 9)},{d(3)}.{d(2)}", f"${r(1, 99)}.99", f"{r(1, 9)}.{d(3)},00 EUR"]
            ),
            "date": lambda: self.rng.choice(
                [f"{r(1, 28):02d}/{r(1, 12):02d}/2024", f"2024-{r(1, 12):02d}-{r(1, 28):02d}"]
            ),
            "time": lambda: self.rng.choice([f"{r(0, 23):02d}:{r(0, 59):02d}", f"{r(1, 12)}.15am"]),
            "percent": lambda: self.rng.choice([f"{r(1, 29)}.9%", f"{r(1, 29)}.9% APR"]),
            "royalmail": lambda: f"{self.rng.choice(['AB', 'RX', 'LT'])}{d(9)}GB",
            "ups": lambda: f"1Z{d(3)}AA{d(10)}",
            "usps": lambda: " ".join([f"94{d(2)}"] + [d(4) for _ in range(4)] + [d(2)]),
            "txn": lambda: self.rng.choice(
                [f"TXN-{d(5)}-AB", f"{d(4)} {d(4)}", f"2024{d(4)}-{d(6)}"]
            ),
            "year": lambda: str(r(1990, 2023)),
            "last4": lambda: d(4),
            "short": lambda: str(r(2, 12)),
        }[kind]()

    def lookalikes(self) -> None:
        for _ in range(5):
            for template, kind in _LOOKALIKE_LINES:
                self.add("lookalike", template, x=decoy(self.lookalike(kind)))

    def mixed(self) -> None:
        for i in range(42):
            first, last = self.ids.name()
            phone = self.ids.phone("GB", "7", 10)
            slots: dict[str, Slot] = {
                "card": pii("CARD", self.card()),
                "iban": pii(
                    "IBAN", self.ids.grouped(self.ids.iban(self.rng.choice(list(_IBAN_LAYOUTS))))
                ),
                "email": pii("EMAIL", self.ids.email()),
                "phone": pii(
                    "PHONE",
                    self.ids.print_phone(phone, self.rng.choice(["national", "international"])),
                ),
                "name": pii("PERSON", f"{first} {last}"),
                "sc": pii("SORT_CODE", self.ids.sort_code()),
                "acct": pii("ACCOUNT", self.ids.account()),
                "address": pii("ADDRESS", self.ids.address()),
                "postcode": pii("POSTCODE", self.ids.postcode()[0]),
                "ssn": pii("NATIONAL_ID", self.ids.ssn()),
                "amount": decoy(self.lookalike("amount")),
                "date": decoy(self.lookalike("date")),
                "order": decoy(self.lookalike("order")),
                "txn": decoy(self.lookalike("txn")),
                "bad_iban": decoy(self.ids.bad_iban("DE")),
            }
            template = [
                "Card {card} was charged {amount} on {date}, please refund it to {iban}.",
                "Hi, my name is {name}, email {email}, phone {phone}.",
                "Sort code {sc}, account number {acct}, reference {txn}.",
                "I moved to {address}, {postcode}; my new mobile is {phone}",
                "SSN {ssn} and card {card} for the credit check on order {order}",
                "Please send it to {iban} not {bad_iban}, I typed the wrong one earlier",
                "Email {email} or call {phone} about card {card}",
            ][i % 7]
            used = {k: v for k, v in slots.items() if "{" + k + "}" in template}
            self.add("mixed", template, **used)

    def limits(self) -> None:
        first, last = self.ids.name()
        address = self.ids.address()
        sc, acct = self.ids.sort_code(), self.ids.account()
        self.add(
            "limit",
            "Please tell {x} I called about the refund.",
            x=pii("PERSON", f"{first} {last}"),
        )
        self.add("limit", "thanks {x}", x=pii("PERSON", first))
        self.add("limit", "i live at {x} now", x=pii("ADDRESS", address.lower()))
        self.add("limit", "my postcode is {x}", x=pii("POSTCODE", self.ids.postcode()[0].lower()))
        self.add("limit", "Flat 2, {x}, Oxford", x=pii("ADDRESS", "The Maltings"))
        self.add(
            "limit",
            "standing order from {sc} / {acct} hasn't gone out",
            sc=pii("SORT_CODE", sc),
            acct=pii("ACCOUNT", acct),
        )
        self.add("limit", "the direct debit on {x} bounced", x=decoy("12-03-24"))
        self.add("limit", "Thanks, {x} said it was your fault", x=decoy("Monzo"))
        self.add("limit", "I bought Dr {x} boots and was charged twice", x=decoy("Martens"))
