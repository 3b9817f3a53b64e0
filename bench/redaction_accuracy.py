"""Redaction recall per identifier kind and layout, look-alikes kept, and time per message.

    python bench/redaction_accuracy.py [--seed 20261207] [--per-kind 400] [--lookalikes 1000]
                                       [--passes 5] [--show 15]

Draws the generated set of ``tests/unit/pipeline/privacy/generated.py`` with ``--seed``:
chat lines each holding one identifier (cards, IBANs, emails, national ids, account numbers,
sort codes, phones from assigned and unassigned ranges of 18 countries in every usual layout,
and cards, IBANs, phones and account numbers wrapped across a line break or spelled out in
words), and look-alike lines (order and reference numbers, amounts, dates, times,
percentages, card last-4, ticker prices, counts, tracking numbers, number words).

An identifier counts as recalled when findings of the default
:class:`~pipeline.privacy.redact.Redactor` cover every character of it (of any kind: a
spelled phone number taken as an account number is gone all the same); a look-alike line
counts as kept when nothing in it is found.  Time: the mean per message over every line,
the median of ``--passes`` timed passes, as CPU time of this process (the bar's measure:
on a shared machine wall time counts other processes' work) and as wall time, and, as a
reference measured in the same run, the former phone finder alone (libphonenumber's matcher
for GB and US).  The bar
(issue 23): recall >= 99.5% for every kind, look-alikes kept >= 99%, < 0.2 ms per message.

The reported run uses the default seed; the redactor was developed against seed 1 and
others, never this one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

# The generator lives with the tests, which are not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import phonenumbers  # noqa: E402

from pipeline.privacy import Redactor  # noqa: E402
from tests.unit.pipeline.privacy.corpus import Sample  # noqa: E402
from tests.unit.pipeline.privacy.generated import REPORT_SEED, build  # noqa: E402


def covered(redactor: Redactor, sample: Sample) -> bool:
    """Whether every character of the sample's identifier is inside a finding."""
    ((_, value),) = sample.expected
    start = sample.text.index(value)
    hit = [False] * len(value)
    for f in redactor.find(sample.text):
        for i in range(max(f.start, start), min(f.end, start + len(value))):
            hit[i - start] = True
    return all(hit[i] for i, c in enumerate(value) if not c.isspace())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=REPORT_SEED, help="Generator seed.")
    parser.add_argument("--per-kind", type=int, default=400, help="Lines per layout.")
    parser.add_argument("--lookalikes", type=int, default=1000, help="Look-alike lines.")
    parser.add_argument("--passes", type=int, default=5, help="Timed passes.")
    parser.add_argument("--show", type=int, default=15, help="Errors listed at most.")
    args = parser.parse_args()
    samples = build(args.seed, args.per_kind, args.lookalikes)
    redactor = Redactor()
    per_group: dict[str, list[bool]] = defaultdict(list)
    errors: list[str] = []
    for sample in samples:
        if sample.expected:
            ok = covered(redactor, sample)
            if not ok:
                errors.append(f"- missed {sample.group}: {sample.text!r}")
        else:
            found = redactor.find(sample.text)
            ok = not found
            if not ok:
                taken = [f"{f.kind} {sample.text[f.start : f.end]!r}" for f in found]
                errors.append(f"- took {', '.join(taken)} in {sample.text!r}")
        per_group[sample.group].append(ok)
    print(
        f"seed {args.seed}: {sum(bool(s.expected) for s in samples)} identifiers, "
        f"{sum(not s.expected for s in samples)} look-alike lines; "
        f"python {platform.python_version()}, {platform.machine()}\n"
    )
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for group, oks in per_group.items():
        head = group.split("/")[0]
        by_kind[head].extend(oks)
    print("| kind | n | recall (look-alikes: kept) |\n|---|---:|---:|")
    for kind, oks in sorted(by_kind.items()):
        print(f"| **{kind}** | {len(oks)} | {sum(oks) / len(oks):.2%} |")
    print("\n| kind/layout | n | recall (kept) |\n|---|---:|---:|")
    for group, oks in sorted(per_group.items()):
        print(f"| {group} | {len(oks)} | {sum(oks) / len(oks):.2%} |")
    print(f"\n{len(errors)} errors" + (":" if errors else ""))
    print("\n".join(errors[: args.show]))

    texts = [s.text for s in samples]
    walls, cpus = [], []
    for _ in range(args.passes):
        wall, cpu = time.perf_counter(), time.process_time()
        for text in texts:
            redactor.redact(text)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    median = statistics.median(cpus)
    # The reference, measured in the same run: the former phone finder alone (libphonenumber's
    # matcher for GB and US, valid numbers only), which the redactor used before issue 23.
    matcher_cpus = []
    for _ in range(args.passes):
        cpu = time.process_time()
        for text in texts:
            for region in ("GB", "US"):
                list(phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.VALID))
        matcher_cpus.append(time.process_time() - cpu)
    reference = statistics.median(matcher_cpus)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\ntime per message: {median / len(texts) * 1e3:.4f} ms CPU, "
        f"{statistics.median(walls) / len(texts) * 1e3:.4f} ms wall (medians of {args.passes} "
        f"passes over {len(texts)} messages; {os.cpu_count()} CPUs, load average {load:.1f})"
    )
    worst = min(sum(v) / len(v) for k, v in by_kind.items() if k != "lookalike")
    kept = sum(by_kind["lookalike"]) / len(by_kind["lookalike"])
    bar = worst >= 0.995 and kept >= 0.99 and median / len(texts) < 0.2e-3
    verdict = "met" if bar else "NOT met"
    print(
        f"reference: phonenumbers' matcher (GB, US) alone {reference / len(texts) * 1e3:.4f} ms "
        f"CPU per message; the whole redactor takes {median / reference:.2f}x that"
    )
    print(f"bar (recall >= 99.5% every kind, kept >= 99%, < 0.2 ms CPU): {verdict}")


if __name__ == "__main__":
    main()
