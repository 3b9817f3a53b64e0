"""PII redaction: precision and recall per identifier kind on the labelled corpus, and speed.

    python bench/pii_redaction.py [--passes 5] [--show 20]

Runs :class:`~pipeline.privacy.redact.Redactor` over every string of the project's PII
corpus (``tests/unit/pipeline/privacy/corpus.py``: banking chat lines with cards, IBANs,
emails, phones, sort codes, account numbers, national ids, names and addresses, look-alikes
such as order numbers, amounts and Luhn-invalid cards, and the documented limits).  A
finding counts only with the labelled kind and exactly the labelled substring.  Prints a
Markdown table of support, true positives, false positives, false negatives, precision
and recall per kind, the identifiers missed and the look-alikes taken, then throughput:
strings redacted per second, the median of ``--passes`` timed passes over the corpus.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

# The corpus lives with the tests, which are not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.privacy import Redactor  # noqa: E402
from tests.unit.pipeline.privacy.corpus import KindScore, compare, corpus, score  # noqa: E402


def table(scores: dict[str, KindScore]) -> list[str]:
    """Markdown rows, one per kind and one for all kinds together."""
    total = KindScore(
        support=sum(s.support for s in scores.values()),
        tp=sum(s.tp for s in scores.values()),
        fp=sum(s.fp for s in scores.values()),
        fn=sum(s.fn for s in scores.values()),
    )
    rows = [
        "| kind | support | TP | FP | FN | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, s in [*scores.items(), ("all", total)]:
        name = f"**{kind}**" if kind == "all" else kind
        rows.append(
            f"| {name} | {s.support} | {s.tp} | {s.fp} | {s.fn} "
            f"| {s.precision:.3f} | {s.recall:.3f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=5, help="Timed passes over the corpus.")
    parser.add_argument("--show", type=int, default=20, help="Errors listed at most.")
    args = parser.parse_args()
    samples = corpus()
    redactor = Redactor()
    lookalikes = sum(len(s.decoys) for s in samples)
    print(
        f"{len(samples)} strings, {sum(len(s.expected) for s in samples)} labelled "
        f"identifiers, {lookalikes} labelled look-alikes; python {platform.python_version()}\n"
    )
    print("\n".join(table(score(redactor, samples))))

    errors = []
    for sample in samples:
        result = compare(redactor, sample)
        errors += [f"- missed {k} `{v}` in {sample.text!r}" for k, v in result.misses]
        errors += [f"- took {k} `{v}` in {sample.text!r}" for k, v in result.spurious]
    print(f"\n{len(errors)} errors" + (":" if errors else ""))
    print("\n".join(errors[: args.show]))

    times = []
    for _ in range(args.passes):
        start = time.perf_counter()
        for sample in samples:
            redactor.redact(sample.text)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"\nthroughput: {len(samples) / median:,.0f} strings/s "
        f"(median of {args.passes} passes over {len(samples)} strings, {median * 1e3:.0f} ms each)"
    )


if __name__ == "__main__":
    main()
