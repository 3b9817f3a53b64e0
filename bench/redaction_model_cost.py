"""Accuracy cost of classifying redacted text instead of raw text.

For each labelled set, counts the texts the default redactor changes and, for a model given
for that set, classifies the test split twice (raw and redacted) and reports accuracy per
task and the difference.  The public sets hold almost no identifiers (their authors
anonymised them), so a second comparison adds one to every test text, the way customers
write them ("You can reach me on 07911 123456."), and compares the model on the original
text, on the text with the identifier, and on that text redacted.

A set in which redaction changes no test text has a cost of exactly zero for any model (the
classifier's input is byte-identical), so no model is needed to state it; a model trained
on redacted training text is also identical to one trained on raw text when no training
text changes.

Usage: ``python bench/redaction_model_cost.py [--seed-model var/models/default]
[--banking77 ../shared/datasets/banking77] [--banking77-model DIR]``
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from models.classifier import AttentionTextClassifier
from models.data.datasets import load_banking77
from models.data.examples import Example
from models.data.loading import seed_examples
from pipeline.privacy import Redactor


def accuracy(
    model_dir: Path, examples: Sequence[Example], texts: Sequence[str]
) -> dict[str, float]:
    """Accuracy per task of the model at ``model_dir`` on ``texts`` labelled by ``examples``."""
    classifier = AttentionTextClassifier(model_dir, "cpu")
    tasks = [t.name for t in classifier.info.tasks]
    right = dict.fromkeys(tasks, 0)
    total = dict.fromkeys(tasks, 0)
    batch = 64
    for start in tqdm(range(0, len(texts), batch), desc=f"classifying {model_dir.name}"):
        predictions = classifier.predict(texts[start : start + batch], tasks)
        for example, prediction in zip(examples[start : start + batch], predictions, strict=True):
            for task, gold in example.labels.items():
                if task in prediction:
                    total[task] += 1
                    right[task] += int(prediction[task].label == gold)
    return {task: right[task] / total[task] for task in tasks if total[task]}


TEMPLATES = (
    "My card number is {card}.",
    "You can reach me on {phone}.",
    "My email is {email}.",
    "The IBAN is {iban}.",
    "My name is {name}.",
)


def _mobile(rng: random.Random) -> str:
    """A UK mobile number in an allocated range (libphonenumber says valid), as written."""
    import phonenumbers

    while True:
        number = f"07{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, "GB")):
            return number


def with_identifier(text: str, rng: random.Random) -> str:
    """``text`` with one generated identifier sentence appended (deterministic per ``rng``)."""
    from stdnum import iban, luhn

    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    card = body + luhn.calc_check_digit(body)
    bban = "WEST" + "".join(str(rng.randrange(10)) for _ in range(14))
    check = iban.calc_check_digits("GB00" + bban)
    values = {
        "card": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
        "phone": _mobile(rng),
        "email": f"customer{rng.randrange(1000)}@example.com",
        "iban": f"GB{check}{bban}",
        "name": rng.choice(["Sarah Jones", "Tom Patel", "Ana Silva", "Li Wei"]),
    }
    return f"{text} {rng.choice(TEMPLATES).format(**values)}"


def injected(name: str, test: Sequence[Example], model: Path | None) -> None:
    if model is None or not (model / "config.json").is_file():
        return
    rng = random.Random(0)
    redactor = Redactor()
    raw = [with_identifier(e.text, rng) for e in test]
    redacted = [redactor.redact(t).text for t in raw]
    missed = sum(r == t for r, t in zip(redacted, raw, strict=True))
    print(f"\n{name}, one identifier added to each test text ({missed} not redacted):")
    original = accuracy(model, test, [e.text for e in test])
    with_raw = accuracy(model, test, raw)
    with_red = accuracy(model, test, redacted)
    print("| task | original | + identifier, raw | + identifier, redacted | redacted vs raw |")
    print("|---|---|---|---|---|")
    for task in original:
        print(
            f"| {task} | {original[task]:.2%} | {with_raw[task]:.2%} | {with_red[task]:.2%} "
            f"| {100 * (with_red[task] - with_raw[task]):+.2f} points |"
        )


def report(
    name: str, train: Sequence[Example], test: Sequence[Example], model: Path | None
) -> None:
    redactor = Redactor()
    changed_train = sum(redactor.redact(e.text).changed for e in train)
    redacted = [redactor.redact(e.text).text for e in test]
    changed_test = sum(r != e.text for r, e in zip(redacted, test, strict=True))
    print(f"\n### {name}")
    print(
        f"texts changed by redaction: train {changed_train}/{len(train)}, "
        f"test {changed_test}/{len(test)}"
    )
    for example, text in zip(test, redacted, strict=True):
        if text != example.text:
            print(f"  {example.text!r}\n  -> {text!r}")
    if changed_test == 0:
        print("accuracy cost: 0.00 points for any model (no test text changes)")
        return
    if model is None or not (model / "config.json").is_file():
        print("no model given: accuracy not measured")
        return
    raw = accuracy(model, test, [e.text for e in test])
    red = accuracy(model, test, redacted)
    print("| task | raw text | redacted text | cost (points) |\n|---|---|---|---|")
    for task in raw:
        print(
            f"| {task} | {raw[task]:.2%} | {red[task]:.2%} | {100 * (raw[task] - red[task]):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-model", type=Path, default=Path("var/models/default"))
    parser.add_argument("--banking77", type=Path, default=Path("../shared/datasets/banking77"))
    parser.add_argument("--banking77-model", type=Path, default=None)
    args = parser.parse_args()
    train, test, _ = seed_examples()
    report("seed data (test split: 20% per class)", train, test, args.seed_model)
    injected("seed data", test, args.seed_model)
    if (args.banking77 / "test.csv").is_file():
        report(
            "Banking77",
            load_banking77(args.banking77 / "train.csv"),
            load_banking77(args.banking77 / "test.csv"),
            args.banking77_model,
        )
        injected("Banking77", load_banking77(args.banking77 / "test.csv"), args.banking77_model)
    else:
        print(f"\nBanking77 not found at {args.banking77}")


if __name__ == "__main__":
    main()
