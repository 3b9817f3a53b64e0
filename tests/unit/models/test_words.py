import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.words import merge_word_pieces, piece_shares, spans_array, split_words, word_spans


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "I submitted it on Monday, 3 days ago.",
            ["I", "submitted", "it", "on", "Monday", ",", "3", "days", "ago", "."],
        ),
        ("don't e-mail AT&T", ["don't", "e-mail", "AT&T"]),
        ("the U.S. rate, e.g. 3.5%", ["the", "U.S.", "rate", ",", "e.g.", "3.5", "%"]),
        ("$1,000 at 10:30, 24/7", ["$", "1,000", "at", "10:30", ",", "24/7"]),
        ("Why?! (really)", ["Why", "?!", "(", "really", ")"]),
        ("Northwind Inc. rose", ["Northwind", "Inc", ".", "rose"]),
        ("ORD-2024-586528 via example.com", ["ORD-2024-586528", "via", "example.com"]),
        ("card [CARD]. ([NATIONAL_ID])", ["card", "[CARD]", ".", "(", "[NATIONAL_ID]", ")"]),
        ("[not a tag]", ["[", "not", "a", "tag", "]"]),
        ("great👍👍 ok", ["great", "👍👍", "ok"]),
        ("café cafe\u0301 ❤️ 👨‍👩‍👧", ["café", "cafe\u0301", "❤️", "👨‍👩‍👧"]),
        ("customers' '90s", ["customers", "'", "'", "90s"]),
        ("  padded\t\n text  ", ["padded", "text"]),
        ("", []),
    ],
)
def test_display_words_split_punctuation_and_keep_joined_tokens(text, words):
    assert split_words(text) == words
    assert [text[s:e] for s, e in word_spans(text)] == words


@given(st.text(max_size=60))
def test_every_non_space_character_is_in_exactly_one_word(text):
    spans = word_spans(text)
    covered = [i for s, e in spans for i in range(s, e)]
    assert covered == sorted(set(covered))
    assert all(s < e for s, e in spans)
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]


def test_pieces_merge_into_display_words_in_order_with_offsets():
    text = "card declined!! at Tesco"
    # "card" | "dec" "##lined" | "!" "!" | "at" | "tes" "##co"
    offsets = [(0, 4), (5, 8), (8, 13), (13, 14), (14, 15), (16, 18), (19, 22), (22, 24)]
    weights = [0.1, 0.2, 0.3, 0.05, 0.05, 0.1, 0.1, 0.1]
    words = merge_word_pieces(text, offsets, weights)
    assert [w.word for w in words] == ["card", "declined", "!!", "at", "Tesco"]
    assert [w.weight for w in words] == pytest.approx([0.1, 0.5, 0.1, 0.1, 0.2])
    assert [(w.start, w.end) for w in words] == [(0, 4), (5, 13), (13, 15), (16, 18), (19, 24)]
    assert sum(w.weight for w in words) == pytest.approx(1.0)


def test_a_piece_spanning_a_word_and_its_punctuation_is_split_by_characters():
    # Sentencepiece-style pieces: "▁submitted." is one piece over "submitted" and ".".
    text = "I submitted. Now"
    words = merge_word_pieces(text, [(0, 1), (1, 12), (12, 16)], [0.2, 0.5, 0.3])
    assert [(w.word, w.start, w.end) for w in words] == [
        ("I", 0, 1),
        ("submitted", 2, 11),
        (".", 11, 12),
        ("Now", 13, 16),
    ]
    # The second piece's 10 non-space characters: 9 in "submitted", 1 in ".".
    assert [w.weight for w in words] == pytest.approx([0.2, 0.45, 0.05, 0.3])
    assert sum(w.weight for w in words) == pytest.approx(1.0)


def test_whitespace_pieces_go_to_the_next_word_or_the_last():
    text = " hi  there "
    words = merge_word_pieces(text, [(0, 1), (1, 3), (3, 5), (10, 11)], [0.1, 0.2, 0.3, 0.4])
    assert [(w.word, w.weight) for w in words] == [
        ("hi", pytest.approx(0.3)),
        ("there", pytest.approx(0.7)),
    ]


def test_repeated_words_and_unicode_keep_their_own_offsets():
    text = "no 👍, no é\u0301 no"
    spans = word_spans(text)
    words = merge_word_pieces(text, spans, [1 / len(spans)] * len(spans))
    assert [w.word for w in words] == ["no", "👍,", "no", "é\u0301", "no"]  # one symbol run
    assert [w.start for w in words if w.word == "no"] == [0, 6, 12]
    assert all(text[w.start : w.end] == w.word for w in words)


def test_unordered_pieces_and_truncated_words():
    text = "one two three four"
    words = merge_word_pieces(text, [(4, 7), (0, 3)], [0.75, 0.25])
    assert [(w.word, w.weight, w.start) for w in words] == [("one", 0.25, 0), ("two", 0.75, 4)]


def test_rejects_special_token_spans_and_mismatched_lengths():
    with pytest.raises(ValueError, match="empty piece span"):
        merge_word_pieces("hi", [(0, 0)], [1.0])
    with pytest.raises(ValueError, match="offsets but"):
        merge_word_pieces("hi", [(0, 2)], [0.5, 0.5])
    with pytest.raises(ValueError, match="outside the text"):
        merge_word_pieces("hi", [(5, 6)], [1.0])
    assert merge_word_pieces("   ", [(0, 1)], [1.0]) == []


@st.composite
def pieces_of(draw):
    """A text and arbitrary non-empty piece spans in it (any tokenizer's cut)."""
    text = draw(st.text(alphabet=st.sampled_from("ab1.,!? 👍é\u0301-'\n"), min_size=1, max_size=40))
    cuts = sorted(
        draw(st.sets(st.integers(1, len(text) - 1), max_size=len(text))) if len(text) > 1 else set()
    )
    bounds = [0, *cuts, len(text)]
    spans = [(s, e) for s, e in zip(bounds, bounds[1:]) if draw(st.booleans())]
    weights = [draw(st.floats(0.0, 1.0)) for _ in spans]
    return text, spans, weights


@given(pieces_of())
def test_merged_weights_sum_to_the_pieces_and_offsets_hold_their_words(case):
    text, spans, weights = case
    words = merge_word_pieces(text, spans, weights)
    assert all(text[w.start : w.end] == w.word for w in words)
    assert [w.start for w in words] == sorted({w.start for w in words})
    if word_spans(text):
        assert sum(w.weight for w in words) == pytest.approx(sum(weights), abs=1e-9)


def test_piece_shares_of_each_piece_sum_to_one():
    units = spans_array(word_spans("ab. cd"))
    shares = piece_shares(units, spans_array([(0, 6), (4, 5)]), 6)
    assert shares.piece.tolist() == [0, 0, 0, 1]
    assert shares.unit.tolist() == [0, 1, 2, 2]
    assert shares.share.tolist() == pytest.approx([0.4, 0.2, 0.4, 1.0])
    assert np.bincount(shares.piece, weights=shares.share).tolist() == pytest.approx([1.0, 1.0])
