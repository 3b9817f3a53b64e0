import json
import random

import msgspec
import pytest
from pydantic import ValidationError

from attnwatch.settings import Settings
from pipeline.config import StreamSettings
from pipeline.schema import (
    DECODE_REASONS,
    DEFAULT_LIMITS,
    ChatEvent,
    DecodeError,
    Limits,
    NewsEvent,
    TaskResult,
    WordWeight,
    decode,
)

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
REASONS = set(DECODE_REASONS)
#: Stands for what a customer wrote: it must never reach a dead letter's detail.
SECRET = "SECRET-4111-1111"


def raw(payload):
    return json.dumps(payload).encode()


def with_version(version_json: bytes) -> bytes:
    """CHAT with ``schema_version`` written exactly as given (json.dumps would normalise it)."""
    body = raw({k: v for k, v in CHAT.items() if k != "schema_version"})
    return b'{"schema_version": ' + version_json + b", " + body[1:]


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


def test_tab_newline_and_carriage_return_are_text_and_the_time_edges_are_accepted():
    event = decode("chat", raw({**CHAT, "text": "line one\r\n\tline two"}))
    assert isinstance(event, ChatEvent)
    assert event.text == "line one\r\n\tline two"
    for ts in (
        "1970-01-01T00:00:00Z",
        "1970-01-01T01:00:00+01:00",
        "9999-12-30T23:59:59.999999Z",
        0,
    ):
        assert isinstance(decode("chat", raw({**CHAT, "ts": ts})), ChatEvent), ts


@pytest.mark.parametrize(
    ("escape", "code_point"),
    [(b"\\u0000", "U+0000"), (b"\\u001F", "U+001F"), (b"\\b", "U+0008"), (b"\\f", "U+000C")],
)
def test_control_characters_are_found_however_they_are_escaped(escape, code_point):
    value = raw({**CHAT, "text": "abcHERE"}).replace(b"HERE", escape)
    assert decode("chat", value) == DecodeError(
        "schema_violation", f"text: control character {code_point} at position 3"
    )


def test_escaped_backslashes_and_other_escapes_are_text():
    # The raw bytes hold "\\b" and "\\u0000" (so the characters are scanned for),
    # but they are a backslash followed by letters, not control characters.
    text = "C:\\bin\\u0000 caf\u00e9\tend"
    assert b"\\\\b" in raw({**CHAT, "text": text})
    event = decode("chat", raw({**CHAT, "text": text}))
    assert isinstance(event, ChatEvent)
    assert event.text == text


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("a\x00b", "text: control character U+0000 at position 1"),
        ("ab\ud800", "text: lone surrogate U+D800 at position 2"),
    ],
)
def test_python_input_is_checked_too(text, detail):
    # model_validate has no raw bytes to look for escapes in: every string is scanned.
    with pytest.raises(ValidationError) as caught:
        ChatEvent.model_validate({**CHAT, "text": text})
    error = caught.value.errors()[0]
    assert f"{error['loc'][0]}: {error['msg']}" == detail


def test_the_limits_default_to_the_settings_defaults_and_are_read_from_settings():
    defaults = StreamSettings.model_fields
    assert Limits() == DEFAULT_LIMITS
    assert Limits() == Limits(
        max_message_bytes=defaults["max_message_bytes"].default,
        max_text_chars=defaults["max_text_chars"].default,
        max_body_chars=defaults["max_body_chars"].default,
    )
    configured = Settings(
        stream=StreamSettings(max_message_bytes=2048, max_text_chars=10, max_body_chars=0)
    )
    assert Limits.from_settings(configured.stream) == Limits(2048, 10, 0)


def test_configured_limits_replace_the_defaults():
    long_text = raw({**CHAT, "text": "x" * 30_000})
    assert isinstance(decode("chat", long_text), DecodeError)
    assert isinstance(decode("chat", long_text, Limits(max_text_chars=30_000)), ChatEvent)
    short = Limits(max_message_bytes=len(raw(NEWS)) + 20, max_text_chars=5, max_body_chars=3)
    assert decode("news", raw(NEWS), short) == DecodeError(
        "schema_violation", "headline: String should have at most 5 characters (max_text_chars)"
    )
    with_body = raw({**NEWS, "headline": "Up", "body": "abcd"})
    assert decode("news", with_body, short) == DecodeError(
        "schema_violation", "body: String should have at most 3 characters (max_body_chars)"
    )
    assert decode("news", raw({**NEWS, "headline": "Up", "body": "abc"}), short).body == "abc"
    big = raw({**NEWS, "headline": "Up", "body": "x" * 100})
    assert decode("news", big, short) == DecodeError(
        "too_large", f"value is {len(big)} bytes; max_message_bytes is {len(raw(NEWS)) + 20}"
    )
    # The length counts what is stored: surrounding whitespace is stripped first.
    assert (
        decode("chat", raw({**CHAT, "text": "  hello  "}), Limits(max_text_chars=5)).text == "hello"
    )


def test_task_result_reads_records_written_before_the_truncation_marker():
    old = {"label": "positive", "score": 0.9, "top": [], "attention": [], "evidence": None}
    assert TaskResult.model_validate(old).attention_truncated is None


def test_evidence_attention_round_trips_and_older_results_have_none():
    old = {"label": "negative", "score": 0.9, "top": [], "attention": [], "evidence": "It fell."}
    assert TaskResult.model_validate(old).evidence_attention is None
    words = [
        {"word": "It", "weight": 0.2, "start": 0, "end": 2},
        {"word": "fell", "weight": 0.7, "start": 3, "end": 7},
        {"word": ".", "weight": 0.1, "start": 7, "end": 8},
    ]
    result = TaskResult.model_validate({**old, "evidence_attention": words})
    again = TaskResult.model_validate_json(result.model_dump_json())
    assert again == result and again.evidence_attention is not None
    assert [w.model_dump() for w in again.evidence_attention] == words


def test_word_offsets_round_trip_and_older_words_have_none():
    old = {"word": "fell.", "weight": 0.5}
    assert WordWeight.model_validate(old).start is None
    assert WordWeight.model_validate(old).end is None
    word = WordWeight(word="fell", weight=0.5, start=3, end=7)
    again = WordWeight.model_validate_json(word.model_dump_json())
    assert again == word and (again.start, again.end) == (3, 7)
    # Output records are checked where they are read (the run loop builds them itself).
    with pytest.raises(msgspec.ValidationError, match="start"):
        WordWeight.model_validate({"word": "x", "weight": 1.0, "start": -1, "end": 0})
    with pytest.raises(msgspec.ValidationError, match="weight"):
        WordWeight.model_validate_json(b'{"word": "x", "weight": "heavy"}')


def test_unknown_fields_are_ignored_and_version_defaults_to_1():
    event = decode("chat", raw({k: v for k, v in CHAT.items() if k != "schema_version"} | {"x": 1}))
    assert isinstance(event, ChatEvent)
    assert event.schema_version == 1


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("chat", raw({**CHAT, "text": "  Ça coûte 10 € 😀\n\u00a0 "})),
        ("chat", json.dumps({**CHAT, "text": "Ça coûte 10 € 😀"}, ensure_ascii=False).encode()),
        ("chat", raw({**CHAT, "ts": 1764064800})),
        ("chat", raw({**CHAT, "ts": "2026-11-25T11:00:00.123456+01:00"})),
        ("chat", raw({**CHAT, "extra": {"nested": [1, 2.5, None, True]}, "n": 1e308})),
        ("chat", raw(CHAT)[:-1] + b', "role": "agent"}'),  # duplicate key: the last wins
        ("chat", raw({**CHAT, "x": float("nan")})),  # NaN is not JSON, but json.loads took it
        ("chat", b"\n\t " + raw(CHAT) + b"\r\n"),
        ("news", raw({**NEWS, "body": None, "tickers": []})),
        ("news", raw({**NEWS, "body": "Line one.\nLine two.", "schema_version": 1})),
    ],
)
def test_valid_events_decode_as_validating_the_parsed_object_did(kind, value):
    # The old decode was json.loads + model_validate: the one-pass JSON mode
    # must give the same event, to the field.
    model = ChatEvent if kind == "chat" else NewsEvent
    event = decode(kind, value)
    assert isinstance(event, model)
    assert event == model.model_validate(json.loads(value))


@pytest.mark.parametrize(
    ("kind", "value", "reason", "detail"),
    [
        ("chat", None, "empty_value", "tombstone"),
        ("chat", b"\xff\xfe{}", "invalid_utf8", "not valid UTF-8 at byte 0: invalid start byte"),
        # Invalid UTF-8 inside a string of otherwise valid JSON, and before a
        # JSON error: UTF-8 is still the reason, as when it was checked first.
        (
            "chat",
            raw(CHAT).replace(b"declined", b"decl\xc3ined"),
            "invalid_utf8",
            f"at byte {raw(CHAT).index(b'declined') + 4}:",
        ),
        ("chat", b'{"message_id": "\xed\xa0\x80', "invalid_utf8", "byte 16"),
        (
            "chat",
            b'{"message_id": ',
            "invalid_json",
            "EOF while parsing a value at line 1 column 15",
        ),
        ("chat", b"", "invalid_json", "EOF"),
        ("chat", raw(CHAT) + b" {}", "invalid_json", "trailing characters"),
        ("chat", b"\xef\xbb\xbf" + raw(CHAT), "invalid_json", "line 1 column 1"),  # a UTF-8 BOM
        ("chat", b"[1, 2]", "not_an_object", "got an array"),
        ("chat", b'"text"', "not_an_object", "got a string"),
        ("news", b"12.5", "not_an_object", "got a number"),
        ("news", b"null", "not_an_object", "got null"),
        ("news", b"true", "not_an_object", "got a boolean"),
        ("chat", raw({**CHAT, "schema_version": 2}), "unsupported_schema_version", "version 2;"),
        ("chat", with_version(b'"1"'), "unsupported_schema_version", "'1' (a string)"),
        ("chat", with_version(b"1.0"), "unsupported_schema_version", "version 1.0;"),
        ("chat", with_version(b"1e0"), "unsupported_schema_version", "version 1.0;"),
        ("chat", with_version(b"true"), "unsupported_schema_version", "true (a boolean)"),
        ("chat", with_version(b"null"), "unsupported_schema_version", "version null;"),
        ("chat", with_version(b"0"), "unsupported_schema_version", "this consumer reads 1"),
        ("chat", with_version(b"[1]"), "unsupported_schema_version", "an array"),
        ("chat", with_version(b"1" * 40), "unsupported_schema_version", "a number"),
        # The version is checked before the fields, as it always was.
        (
            "chat",
            raw({**CHAT, "schema_version": 2, "role": "bot"}),
            "unsupported_schema_version",
            "version 2;",
        ),
        ("chat", raw({k: v for k, v in CHAT.items() if k != "text"}), "schema_violation", "text"),
        ("chat", raw({**CHAT, "text": "   "}), "schema_violation", "text"),
        ("chat", raw({**CHAT, "role": "bot"}), "schema_violation", "role"),
        ("chat", raw({**CHAT, "ts": "2026-11-25T10:00:00"}), "schema_violation", "timezone"),
        ("chat", raw({**CHAT, "ts": "yesterday"}), "schema_violation", "ts"),
        ("chat", raw({**CHAT, "message_id": 5}), "schema_violation", "message_id"),
        ("chat", raw({**CHAT, "text": "x" * 20_001}), "schema_violation", "at most 20000"),
        (
            "news",
            raw({**NEWS, "headline": "x" * 20_001}),
            "schema_violation",
            "headline: String should have at most 20000 characters (max_text_chars)",
        ),
        (
            "news",
            raw({**NEWS, "body": "x" * 200_001}),
            "schema_violation",
            "body: String should have at most 200000 characters (max_body_chars)",
        ),
        # Poison pills: PostgreSQL text cannot hold U+0000, and converting these
        # times to UTC overflowed.
        (
            "chat",
            raw({**CHAT, "text": "hello world\u0000 and more"}),
            "schema_violation",
            "text: control character U+0000 at position 11",
        ),
        ("chat", raw({**CHAT, "channel": "a\u001bb"}), "schema_violation", "channel: control"),
        ("chat", raw({**CHAT, "message_id": "\u0007"}), "schema_violation", "U+0007"),
        ("news", raw({**NEWS, "source": "Wire\u000c"}), "schema_violation", "source: control"),
        ("news", raw({**NEWS, "body": "a\u0000"}), "schema_violation", "body: control"),
        (
            "chat",
            raw({**CHAT, "ts": "0001-01-01T00:30:00+01:00"}),
            "schema_violation",
            "ts: time must be from 1970-01-01T00:00:00Z to 9999-12-30T23:59:59.999999Z",
        ),
        ("chat", raw({**CHAT, "ts": "9999-12-31T23:30:00-01:00"}), "schema_violation", "ts: time"),
        ("chat", raw({**CHAT, "ts": "9999-12-31T00:00:00Z"}), "schema_violation", "ts: time"),
        ("news", raw({**NEWS, "ts": "1969-12-31T23:59:59.999999Z"}), "schema_violation", "ts:"),
        ("news", raw({**NEWS, "ts": -1}), "schema_violation", "ts: time must be"),
        ("chat", b" " * 1_000_001, "too_large", "value is 1000001 bytes; max_message_bytes"),
        ("news", raw({**NEWS, "tickers": "NWB"}), "schema_violation", "tickers"),
        ("news", raw({**NEWS, "tickers": ["nwb"]}), "schema_violation", "tickers.0"),
        (
            "news",
            raw({k: v for k, v in NEWS.items() if k != "headline"}),
            "schema_violation",
            "headline",
        ),
        (
            "chat",
            raw({**CHAT, "role": "bot", "channel": ""}),
            "schema_violation",
            "channel: String should have at least 1 character; role: Input should be",
        ),
    ],
)
def test_each_kind_of_bad_event_is_rejected_with_a_reason(kind, value, reason, detail):
    result = decode(kind, value)
    assert isinstance(result, DecodeError)
    assert result.reason == reason
    assert detail in result.detail


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        # json.loads raised RecursionError on these: the run loop would have crashed.
        ("chat", b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        ("chat", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_json"),
        # ... and ValueError (more than 4,300 digits) on these.
        ("chat", b'{"x": ' + b"9" * 5_000 + b"}", "invalid_json"),
        ("chat", with_version(b"9" * 5_000), "invalid_json"),
        ("news", b'{"x": -' + b"9" * 100_000 + b"}", "invalid_json"),
        ("chat", with_version(b"1e999999"), "unsupported_schema_version"),
        # A lone surrogate escape cannot become text (was schema_violation).
        ("chat", raw({**CHAT, "text": "a\ud800b"}), "invalid_json"),
        ("chat", b"\x00" * 1000, "invalid_json"),
    ],
)
def test_hostile_input_is_a_dead_letter_not_an_exception(kind, value, reason):
    result = decode(kind, value)
    assert isinstance(result, DecodeError)
    assert result.reason == reason
    assert len(result.detail) < 200


def test_decode_never_raises_on_random_and_mangled_bytes():
    rng = random.Random(9)
    good = [raw(CHAT), raw({**NEWS, "body": "Up 10%."})]
    seen = set()
    for _ in range(3_000):
        base = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(base) + 1)
            action = rng.random()
            if action < 0.4 and at < len(base):
                base[at] = rng.randrange(256)
            elif action < 0.7:
                del base[at:]
            else:
                base[at:at] = rng.randbytes(rng.randint(1, 8))
        for value in (bytes(base), rng.randbytes(rng.randint(0, 64))):
            result = decode(rng.choice(["chat", "news"]), value)
            assert isinstance(result, ChatEvent | NewsEvent | DecodeError)
            if isinstance(result, DecodeError):
                assert result.reason in REASONS
                seen.add(result.reason)
    # The mangling reaches every decoder stage, not just the first.
    assert seen >= {"invalid_utf8", "invalid_json", "schema_violation"}


def test_an_unexpected_parser_failure_is_a_dead_letter_without_its_message(monkeypatch):
    def explode(cls, data, **kwargs):
        raise RecursionError(SECRET)

    monkeypatch.setattr(ChatEvent, "model_validate_json", classmethod(explode))
    result = decode("chat", raw(CHAT))
    assert result == DecodeError("invalid_json", "the JSON parser failed: RecursionError")


@pytest.mark.parametrize(
    "value",
    [
        raw({**CHAT, "text": SECRET})[:-20],
        raw({**CHAT, "text": SECRET + "\u00e9"}).replace(b"\\u00e9", b"\xc3"),
        raw({**CHAT, "text": SECRET}).replace(b"SECRET", b"SECRET\x01"),
        json.dumps([SECRET]).encode(),
        json.dumps(SECRET).encode(),
        raw({**CHAT, "schema_version": SECRET}),
        raw({**CHAT, "schema_version": [SECRET]}),
        raw({**CHAT, "schema_version": {"v": SECRET}}),
        raw({**CHAT, "text": SECRET * 2_000}),
        raw({**CHAT, "role": SECRET, "channel": SECRET, "message_id": [SECRET]}),
        raw({**CHAT, "ts": SECRET}),
        raw({**NEWS, "tickers": [SECRET], "body": SECRET * 20_000}),
    ],
)
def test_detail_never_quotes_the_message(value):
    result = decode("chat" if b"message_id" in value else "news", value)
    assert isinstance(result, DecodeError)
    assert result.detail
    assert "SECRET" not in result.detail
    assert "4111" not in result.detail
