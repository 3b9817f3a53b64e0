"""Length-grouped batch order: every example once per epoch, batches of similar length."""

import random

import pytest

from models.training.sampling import batch_order


def padded_tokens(lengths, batches):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def short_and_long(n, seed=0):
    """Banking77-like queries (8-30 tokens) with one text in four a long sentence (30-128)."""
    rng = random.Random(seed)
    return [rng.randint(30, 128) if rng.random() < 0.25 else rng.randint(8, 30) for _ in range(n)]


def test_every_index_once_in_full_batches():
    lengths = [(i * 37) % 61 + 3 for i in range(1003)]
    batches = batch_order(lengths, 32, seed=5, group=10)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert [len(b) for b in batches].count(32) == 1003 // 32
    assert len(batches[-1]) == 1003 % 32
    exact = batch_order(lengths[:64], 32, seed=5, group=1)
    assert [len(b) for b in exact] == [32, 32]
    assert sorted(i for b in exact for i in b) == list(range(64))
    assert batch_order([], 32, seed=5) == []


@pytest.mark.parametrize(
    "lengths", [[(i * 37) % 61 + 3 for i in range(2000)], short_and_long(3000)]
)
def test_grouping_pads_less_than_plain_shuffling_and_changes_per_epoch(lengths):
    plain = batch_order(lengths, 32, seed=1, group=1)
    grouped = batch_order(lengths, 32, seed=1, group=50)
    assert padded_tokens(lengths, grouped) < 0.8 * padded_tokens(lengths, plain)
    assert grouped == batch_order(lengths, 32, seed=1, group=50)
    assert grouped != batch_order(lengths, 32, seed=2, group=50)
    assert plain == batch_order(lengths, 32, seed=1, group=1)
    assert plain != batch_order(lengths, 32, seed=2, group=1)


def test_batches_are_shuffled_not_longest_to_shortest():
    lengths = short_and_long(3200)
    batches = batch_order(lengths, 32, seed=3, group=50)
    longest = [max(lengths[i] for i in b) for b in batches]
    non_increasing = sum(b <= a for a, b in zip(longest, longest[1:])) / (len(longest) - 1)
    assert 0.3 < non_increasing < 0.75  # sorted within mega-batches would give about 0.98


def test_larger_groups_pad_less():
    lengths = short_and_long(3200)
    padding = [padded_tokens(lengths, batch_order(lengths, 32, 4, group)) for group in (1, 5, 50)]
    assert padding[0] > padding[1] > padding[2]


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch_size"):
        batch_order([1, 2], 0, seed=0)
    with pytest.raises(ValueError, match="group"):
        batch_order([1, 2], 2, seed=0, group=0)
