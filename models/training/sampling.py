"""The order in which training examples are batched: shuffled, grouped by length.

Batches are padded to their longest text, so a batch mixing a 5-token query
with a 60-token sentence spends most of its compute on padding.  As Hugging
Face's ``LengthGroupedSampler`` does, each epoch shuffles the examples, cuts
the shuffled list into "mega-batches" of ``group`` batches, sorts each
mega-batch by length and cuts it into batches, then shuffles the batch order:
batches hold texts of similar length, while what goes into them still changes
from epoch to epoch.  ``group=1`` gives plain shuffled batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def batch_order(
    lengths: Sequence[int], batch_size: int, seed: int, group: int = 50
) -> list[list[int]]:
    """Every index of ``lengths`` exactly once, in batches of ``batch_size`` (the last shorter).

    Deterministic for a given ``seed``; callers pass a different seed per epoch.
    """
    if batch_size < 1 or group < 1:
        msg = f"batch_size and group must be >= 1, got {batch_size} and {group}"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311 - shuffling, not security
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group == 1:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * group
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    # Keep the short remainder batch (if any) where it is: it is the last of the
    # last chunk, so shuffling only the full batches leaves every batch full but one.
    full = [b for b in batches if len(b) == batch_size]
    rest = [b for b in batches if len(b) != batch_size]
    rng.shuffle(full)
    return full + rest
