"""Tests for the hand-written seed data and its loader (models.data.seed)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from models.data import seed

TICKER = re.compile(r"^[A-Z]{2,5}$")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def chat() -> list[seed.ChatExample]:
    return seed.load_chat()


@pytest.fixture(scope="module")
def news() -> list[seed.NewsExample]:
    return seed.load_news()


@pytest.fixture(scope="module")
def replies() -> list[seed.AgentReply]:
    return seed.load_agent_replies()


# --- the data -----------------------------------------------------------------


def test_seed_files_exist() -> None:
    for name in ("chat.jsonl", "news.jsonl", "agent.jsonl"):
        assert (seed.SEED_DIR / name).is_file(), name


def test_chat_counts(chat: list[seed.ChatExample]) -> None:
    per_intent = Counter(c.intent for c in chat)
    assert len(per_intent) >= 15
    assert min(per_intent.values()) >= 40, per_intent
    assert seed.intents() == sorted(per_intent)


def test_every_intent_has_every_sentiment(chat: list[seed.ChatExample]) -> None:
    pairs = Counter((c.intent, c.sentiment) for c in chat)
    for intent in seed.intents():
        for sentiment in seed.SENTIMENTS:
            assert pairs[(intent, sentiment)] >= 5, (intent, sentiment)


def test_chat_sentiment_mix(chat: list[seed.ChatExample]) -> None:
    share = {s: n / len(chat) for s, n in Counter(c.sentiment for c in chat).items()}
    assert set(share) == set(seed.SENTIMENTS)
    assert all(0.15 <= v <= 0.55 for v in share.values()), share


def test_chat_texts_are_unique_and_sane(chat: list[seed.ChatExample]) -> None:
    counts = Counter(_norm(c.text) for c in chat)
    duplicates = [t for t, n in counts.items() if n > 1]
    assert not duplicates
    for c in chat:
        assert 3 <= len(c.text.split()) <= 40, c.text


def test_news_counts_and_labels(news: list[seed.NewsExample]) -> None:
    assert len(news) >= 500
    assert all(n.sentiment in seed.SENTIMENTS for n in news)
    assert set(Counter(n.sentiment for n in news)) == set(seed.SENTIMENTS)
    assert any(n.body for n in news)


def test_news_headlines_unique(news: list[seed.NewsExample]) -> None:
    counts = Counter(_norm(n.headline) for n in news)
    assert not [h for h, k in counts.items() if k > 1]


def test_tickers_are_well_formed(news: list[seed.NewsExample]) -> None:
    for n in news:
        assert len(n.tickers) <= 2, n.headline
        for ticker in n.tickers:
            assert TICKER.match(ticker), (ticker, n.headline)
    assert len({t for n in news for t in n.tickers}) >= 30


def test_agent_replies_cover_every_intent(replies: list[seed.AgentReply]) -> None:
    per_intent = Counter(r.intent for r in replies)
    assert set(per_intent) == set(seed.intents())
    assert min(per_intent.values()) >= 4
    assert len({_norm(r.text) for r in replies}) == len(replies)


def test_data_hash_matches_sha256(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    assert seed.data_hash(a, b) == hashlib.sha256(b"hello world").hexdigest()
    assert seed.data_hash(b, a) != seed.data_hash(a, b)
    digest = seed.data_hash(seed.SEED_DIR / "chat.jsonl", seed.SEED_DIR / "news.jsonl")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


# --- stratified_split -----------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete(chat: list[seed.ChatExample]) -> None:
    train, test = seed.stratified_split(chat, key=lambda c: c.intent, seed=3)
    again = seed.stratified_split(chat, key=lambda c: c.intent, seed=3)
    assert (train, test) == again
    assert not {id(c) for c in train} & {id(c) for c in test}
    assert len(train) + len(test) == len(chat)
    assert {id(c) for c in train + test} == {id(c) for c in chat}
    other = seed.stratified_split(chat, key=lambda c: c.intent, seed=4)
    assert other[1] != test


def test_split_is_stratified_about_twenty_percent(chat: list[seed.ChatExample]) -> None:
    _, test = seed.stratified_split(chat, key=lambda c: c.intent, test_fraction=0.2)
    total = Counter(c.intent for c in chat)
    held = Counter(c.intent for c in test)
    for intent, n in total.items():
        assert held[intent] == round(n * 0.2), intent


def test_split_keeps_input_order() -> None:
    items = [f"{label}{i}" for i in range(10) for label in "abc"]
    train, test = seed.stratified_split(items, key=lambda s: s[0], test_fraction=0.3)
    assert train == [s for s in items if s in set(train)]
    assert test == [s for s in items if s in set(test)]
    assert Counter(s[0] for s in test) == {"a": 3, "b": 3, "c": 3}


def test_split_small_classes() -> None:
    items = ["a1", "a2", "b1"]
    train, test = seed.stratified_split(items, key=lambda s: s[0], test_fraction=0.1)
    assert len([s for s in test if s[0] == "a"]) == 1
    assert "b1" in train


def test_a_class_split_does_not_depend_on_the_other_classes(
    chat: list[seed.ChatExample],
) -> None:
    # sklearn's stratified splitters fail this: they draw one permutation over all items.
    intents = seed.intents()
    _, test = seed.stratified_split(chat, key=lambda c: c.intent, seed=5)
    fewer = [c for c in chat if c.intent != intents[0]]
    _, test_fewer = seed.stratified_split(fewer, key=lambda c: c.intent, seed=5)
    assert test_fewer == [c for c in test if c.intent != intents[0]]


def test_singletons_stay_in_train_among_larger_classes() -> None:
    items = [f"a{i}" for i in range(10)] + ["b0", "c0"] + [f"d{i}" for i in range(5)]
    train, test = seed.stratified_split(items, key=lambda s: s[0], test_fraction=0.2, seed=1)
    assert {"b0", "c0"} <= set(train)
    assert Counter(s[0] for s in test) == {"a": 2, "d": 1}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        seed.stratified_split(["x", "y"], key=lambda s: s, test_fraction=fraction)


# --- loader validation ------------------------------------------------------------


def _write(path: Path, *rows: object) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD_CHAT = {"text": "my card was declined", "intent": "card_declined", "sentiment": "negative"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"text": "hi", "intent": "x", "sentiment": "angry"}, "unknown sentiment"),
        ({"text": "   ", "intent": "x", "sentiment": "neutral"}, "empty"),
        ({"intent": "x", "sentiment": "neutral"}, "missing field 'text'"),
        ({"text": "hi", "sentiment": "neutral"}, "missing field 'intent'"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_load_chat_rejects_bad_line(tmp_path: Path, bad: object, reason: str) -> None:
    path = _write(tmp_path / "chat.jsonl", GOOD_CHAT, GOOD_CHAT, bad)
    with pytest.raises(ValueError, match=r"chat\.jsonl:3:") as info:
        seed.load_chat(path)
    assert reason in str(info.value)


def test_load_chat_reads_valid_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "chat.jsonl", GOOD_CHAT, "", GOOD_CHAT)
    rows = seed.load_chat(path)
    assert rows == [seed.ChatExample("my card was declined", "card_declined", "negative")] * 2


def test_load_news_rejects_bad_line(tmp_path: Path) -> None:
    good = {"headline": "Acme beats estimates", "tickers": ["ACME"], "sentiment": "positive"}
    path = _write(tmp_path / "news.jsonl", good, {**good, "tickers": "ACME"})
    with pytest.raises(ValueError, match=r"news\.jsonl:2:.*tickers"):
        seed.load_news(path)
    path = _write(tmp_path / "news.jsonl", {**good, "sentiment": "bullish"})
    with pytest.raises(ValueError, match=r"news\.jsonl:1:.*unknown sentiment"):
        seed.load_news(path)
    path = _write(tmp_path / "news.jsonl", {"tickers": [], "sentiment": "neutral"})
    with pytest.raises(ValueError, match=r"news\.jsonl:1:.*headline"):
        seed.load_news(path)


def test_load_news_optional_body(tmp_path: Path) -> None:
    good = {"headline": "Acme AGM on May 1", "tickers": [], "sentiment": "neutral"}
    path = _write(tmp_path / "news.jsonl", good, {**good, "headline": "x y z", "body": "Text."})
    first, second = seed.load_news(path)
    assert first.body is None and first.tickers == ()
    assert second.body == "Text."


def test_load_agent_rejects_bad_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "agent.jsonl", {"intent": "x", "text": "ok"}, {"intent": "x"})
    with pytest.raises(ValueError, match=r"agent\.jsonl:2:.*text"):
        seed.load_agent_replies(path)
