"""Attention as shaded HTML: one span per word, exact weights, escaped, spacing kept."""

from __future__ import annotations

import html as html_module
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.web.shading import shade, top_words
from models.words import split_words, word_spans
from tests.unit.dashboards.html import shaded_spans


def weights(text: str) -> list[dict[str, object]]:
    words = text.split()
    raw = [i + 1.0 for i in range(len(words))]
    return [{"word": w, "weight": x / sum(raw)} for w, x in zip(words, raw)]


def spans(html: str):
    return shaded_spans(f'<p data-attention="x">{html}</p>')


def with_offsets(text: str) -> list[dict[str, object]]:
    """Display words with offsets, as the pipeline logs them now."""
    found = word_spans(text)
    raw = [i + 1.0 for i in range(len(found))]
    return [
        {"word": text[s:e], "weight": x / sum(raw), "start": s, "end": e}
        for (s, e), x in zip(found, raw)
    ]


def text_content(html: str) -> str:
    """What a browser shows: the markup's text, unescaped."""
    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_offsets_shade_the_exact_spans_and_keep_the_text_between():
    text = "  My card, sadly, was <b>declined</b>!\n\tno no 👍  "
    attention = with_offsets(text)
    html = str(shade(text, attention, "sentiment"))
    found = spans(html)
    assert [s["data-word"] for s in found] == split_words(text)
    assert [float(s["data-weight"]) for s in found] == [a["weight"] for a in attention]
    assert text_content(html) == text  # spacing, line breaks and punctuation as written
    assert "<b>" not in html and 'data-word="&lt;"' in html


def test_offsets_pick_the_occurrence_that_was_weighed():
    text = "no, no no"
    attention = [{"word": "no", "weight": 1.0, "start": 7, "end": 9}]  # only the last "no"
    found = spans(shade(text, attention, "intent"))
    assert [s["data-word"] for s in found] == ["no", ",", "no", "no"]
    assert [s.get("data-weight") for s in found] == [None, None, None, "1.0"]
    assert all(s["title"] == "weight not logged" for s in found[:3])


def test_words_between_trimmed_offsets_have_no_weight():
    text = "one two, three four"
    full = with_offsets(text)
    kept = [full[0], full[-1]]  # the pipeline dropped the middle to fit a record
    found = spans(shade(text, kept, "sentiment"))
    assert [s["data-word"] for s in found] == ["one", "two", ",", "three", "four"]
    assert [s.get("data-weight") for s in found] == [
        repr(full[0]["weight"]),
        None,
        None,
        None,
        repr(full[-1]["weight"]),
    ]


def test_offsets_that_do_not_hold_their_words_fall_back_to_matching():
    text = "my card was declined"
    shifted = [{**a, "start": 1, "end": 1 + len(str(a["word"]))} for a in weights(text)]
    found = spans(shade(text, shifted, "sentiment"))
    assert [s["data-word"] for s in found] == text.split()
    assert sum(float(s["data-weight"]) for s in found) == pytest.approx(1.0)


def test_every_word_is_a_span_with_its_exact_weight():
    # Events logged before offsets: whitespace words, matched in order.
    text = "my card was declined"
    attention = weights(text)
    found = spans(shade(text, attention, "sentiment"))
    assert [s["data-word"] for s in found] == text.split()
    assert [float(s["data-weight"]) for s in found] == [a["weight"] for a in attention]
    assert sum(float(s["data-weight"]) for s in found) == pytest.approx(1.0)


def test_the_heaviest_word_is_darkest_and_the_weight_is_in_the_title():
    html = str(shade("a b", [{"word": "a", "weight": 0.2}, {"word": "b", "weight": 0.8}], "intent"))
    assert "rgba(86, 180, 233, 0.85)" in html  # b, the heaviest
    assert "rgba(86, 180, 233, 0.21)" in html  # a: 0.2 / 0.8 of it
    assert 'title="b: intent attention 0.800"' in html


def test_text_is_escaped_and_spacing_kept():
    text = '<script>alert("x")</script>\nnext  line'
    html = str(shade(text, weights(text), "sentiment"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "</span>\n<span" in html and "</span>  <span" in html


def test_words_whose_weight_was_trimmed_have_no_weight():
    # The pipeline drops the lowest weights to fit a record: the rest still line up.
    text = "one two three four"
    attention = [{"word": "one", "weight": 0.5}, {"word": "four", "weight": 0.3}]
    found = spans(shade(text, attention, "sentiment"))
    assert [s["data-word"] for s in found] == ["one", "two", "three", "four"]
    assert [s.get("data-weight") for s in found] == ["0.5", None, None, "0.3"]


def test_attention_that_does_not_follow_the_text_is_shown_as_logged():
    found = spans(shade("completely different words", weights("other text here"), "intent"))
    assert [s["data-word"] for s in found] == ["other", "text", "here"]
    assert sum(float(s["data-weight"]) for s in found) == pytest.approx(1.0)


def test_no_attention_leaves_plain_spans():
    found = spans(shade("hello there", None, "sentiment"))
    assert [s.get("data-weight") for s in found] == [None, None]


def test_top_words():
    attention = weights("a b c d")
    assert top_words(attention, 2) == [("d", 0.4), ("c", 0.3)]


@given(st.text(max_size=80))
def test_offsets_keep_the_text_and_every_weight(text):
    attention = with_offsets(text)
    html = str(shade(text, attention, "sentiment"))
    assert text_content(html) == text
    found = [s for s in spans(html) if s.get("data-weight")]
    assert [float(s["data-weight"]) for s in found] == [a["weight"] for a in attention]


@given(
    st.lists(
        st.text(min_size=1).filter(lambda w: not any(c.isspace() for c in w)),
        min_size=1,
        max_size=30,
    )
)
def test_weights_always_sum_to_the_logged_total(words):
    text = " ".join(words)
    attention = weights(text)
    found = spans(shade(text, attention, "sentiment"))
    total = sum(float(s["data-weight"]) for s in found if s.get("data-weight"))
    assert total == pytest.approx(sum(a["weight"] for a in attention))
