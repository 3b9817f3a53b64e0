"""Length-grouped batch order: every example once per epoch, batches of similar length."""

import pytest

from models.training.sampling import batch_order


def padded_tokens(lengths, batches):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_index_once_in_full_batches():
    lengths = [(i * 37) % 61 + 3 for i in range(1003)]
    batches = batch_order(lengths, 32, seed=5, group=10)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert [len(b) for b in batches].count(32) == 1003 // 32
    assert len(batches[-1]) == 1003 % 32


def test_grouping_pads_less_than_plain_shuffling_and_changes_per_epoch():
    lengths = [(i * 37) % 61 + 3 for i in range(2000)]
    plain = batch_order(lengths, 32, seed=1, group=1)
    grouped = batch_order(lengths, 32, seed=1, group=50)
    assert padded_tokens(lengths, grouped) < 0.8 * padded_tokens(lengths, plain)
    assert grouped == batch_order(lengths, 32, seed=1, group=50)
    assert grouped != batch_order(lengths, 32, seed=2, group=50)


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch_size"):
        batch_order([1, 2], 0, seed=0)
