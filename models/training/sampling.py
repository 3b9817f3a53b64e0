"""The order in which training examples are batched: shuffled, grouped by length.

Batches are padded to their longest text, so a batch mixing a 5-token query
with a 60-token sentence spends most of its compute on padding.  Each epoch,
transformers' length grouping shuffles the examples, cuts the shuffled list
into "mega-batches" of ``group`` batches and sorts each by length; the
batches cut from it are then shuffled: batches hold texts of similar length,
while what goes into them, and the order they come in, still change from
epoch to epoch.  ``group=1`` gives plain shuffled batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.trainer_pt_utils import get_length_grouped_indices


def batch_order(
    lengths: Sequence[int], batch_size: int, seed: int, group: int = 50
) -> list[list[int]]:
    """Every index of ``lengths`` exactly once, in batches of ``batch_size`` (the last shorter).

    Deterministic for a given ``seed``; callers pass a different seed per epoch.
    """
    if batch_size < 1 or group < 1:
        msg = f"batch_size and group must be >= 1, got {batch_size} and {group}"
        raise ValueError(msg)
    if not lengths:
        return []
    generator = torch.Generator().manual_seed(seed)
    # The grouping is transformers' (``LengthGroupedSampler`` calls the same function), with
    # the padding of the hand-written grouping it replaced: 17.3 padded tokens per Banking77
    # query, 22.1 with PhraseBank mixed in, against 47.1 and 57.5 for plain shuffling, in
    # 1.5 ms per epoch against 7.2 ms (bench/sampler_padding.py).  The sampler itself is not
    # used: it ignores ``group`` and leaves the batches of each mega-batch running from
    # longest to shortest (98% of neighbouring batches), a length sawtooth every ``group`` steps.
    flat: list[int] = get_length_grouped_indices(  # type: ignore[no-untyped-call]
        list(lengths), batch_size, mega_batch_mult=group, generator=generator
    )
    batches = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    # Every mega-batch but the last is a whole number of batches, so only the very last
    # batch can be short: it stays last and the full ones are shuffled.
    full = len(batches) - (len(batches[-1]) != batch_size)
    shuffled = torch.randperm(full, generator=generator).tolist()
    return [batches[i] for i in shuffled] + batches[full:]
