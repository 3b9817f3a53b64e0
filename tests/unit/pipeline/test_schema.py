import json

import pytest

from pipeline.schema import ChatEvent, DecodeError, NewsEvent, decode

CHAT = {
    "schema_version": 1,
    "message_id": "m1",
    "conversation_id": "c1",
    "channel": "app",
    "role": "customer",
    "text": "My card was declined at the pharmacy",
    "ts": "2026-11-25T10:00:00+00:00",
}
NEWS = {
    "article_id": "a1",
    "source": "Harbor Wire",
    "headline": "Northwind Bank raises dividend",
    "tickers": ["NWB", "BRK.B"],
    "ts": "2026-11-25T10:00:00Z",
}


def raw(payload):
    return json.dumps(payload).encode()


def test_good_chat_and_news_are_accepted():
    chat = decode("chat", raw(CHAT))
    assert isinstance(chat, ChatEvent)
    assert chat.input_id == "chat:m1"
    assert chat.ts.utcoffset().total_seconds() == 0
    news = decode("news", raw(NEWS))
    assert isinstance(news, NewsEvent)
    assert news.text == NEWS["headline"]
    with_body = decode("news", raw({**NEWS, "body": "Up 10%."}))
    assert with_body.text == "Northwind Bank raises dividend\nUp 10%."


def test_unknown_fields_are_ignored_and_version_defaults_to_1():
    event = decode("chat", raw({k: v for k, v in CHAT.items() if k != "schema_version"} | {"x": 1}))
    assert isinstance(event, ChatEvent)


@pytest.mark.parametrize(
    ("kind", "value", "reason", "detail"),
    [
        ("chat", None, "empty_value", "tombstone"),
        ("chat", b"\xff\xfe{}", "invalid_utf8", "utf-8"),
        ("chat", b'{"message_id": ', "invalid_json", ""),
        ("chat", b"[1, 2]", "not_an_object", "list"),
        ("chat", raw({**CHAT, "schema_version": 2}), "unsupported_schema_version", "2"),
        ("chat", raw({k: v for k, v in CHAT.items() if k != "text"}), "schema_violation", "text"),
        ("chat", raw({**CHAT, "text": "   "}), "schema_violation", "text"),
        ("chat", raw({**CHAT, "role": "bot"}), "schema_violation", "role"),
        ("chat", raw({**CHAT, "ts": "2026-11-25T10:00:00"}), "schema_violation", "timezone"),
        ("chat", raw({**CHAT, "ts": "yesterday"}), "schema_violation", "ts"),
        ("news", raw({**NEWS, "tickers": "NWB"}), "schema_violation", "tickers"),
        ("news", raw({**NEWS, "tickers": ["nwb"]}), "schema_violation", "tickers.0"),
        (
            "news",
            raw({k: v for k, v in NEWS.items() if k != "headline"}),
            "schema_violation",
            "headline",
        ),
    ],
)
def test_each_kind_of_bad_event_is_rejected_with_a_reason(kind, value, reason, detail):
    result = decode(kind, value)
    assert isinstance(result, DecodeError)
    assert result.reason == reason
    assert detail in result.detail
