import pytest

from models.words import merge_word_pieces


def test_pieces_merge_into_whitespace_words_in_order():
    text = "card declined!! at Tesco"
    # "card" | "dec" "##lined" | "!" "!" | "at" | "tes" "##co"
    offsets = [(0, 4), (5, 8), (8, 13), (13, 14), (14, 15), (16, 18), (19, 22), (22, 24)]
    weights = [0.1, 0.2, 0.3, 0.05, 0.05, 0.1, 0.1, 0.1]
    words = merge_word_pieces(text, offsets, weights)
    assert [w.word for w in words] == ["card", "declined!!", "at", "Tesco"]
    assert [w.weight for w in words] == pytest.approx([0.1, 0.6, 0.1, 0.2])
    assert sum(w.weight for w in words) == pytest.approx(1.0)


def test_unordered_pieces_and_truncated_words():
    text = "one two three four"
    words = merge_word_pieces(text, [(4, 7), (0, 3)], [0.75, 0.25])
    assert [(w.word, w.weight) for w in words] == [("one", 0.25), ("two", 0.75)]


def test_rejects_special_token_spans_and_mismatched_lengths():
    with pytest.raises(ValueError, match="empty piece span"):
        merge_word_pieces("hi", [(0, 0)], [1.0])
    with pytest.raises(ValueError, match="offsets but"):
        merge_word_pieces("hi", [(0, 2)], [0.5, 0.5])
    with pytest.raises(ValueError, match="outside the text"):
        merge_word_pieces("hi", [(5, 6)], [1.0])
