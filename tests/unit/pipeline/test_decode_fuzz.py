"""decode never raises: random bytes, random JSON and near-valid events with hostile fields."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pipeline.schema import (
    DECODE_REASONS,
    EARLIEST_TS,
    LATEST_TS,
    ChatEvent,
    DecodeError,
    Limits,
    NewsEvent,
    decode,
)

# About 4 s for the file on an idle core; well under 20 s on a loaded 2-core machine.
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
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
    "schema_version": 1,
    "article_id": "a1",
    "source": "Harbor Wire",
    "headline": "Northwind Bank raises dividend",
    "body": "Up 10%.",
    "tickers": ["NWB", "BRK.B"],
    "ts": "2026-11-25T10:00:00Z",
}
BASES = {"chat": CHAT, "news": NEWS}
CHAT_STRINGS = ("message_id", "conversation_id", "channel", "role", "text")
NEWS_STRINGS = ("article_id", "source", "headline", "body")
# Small limits, so that length checks are reached without megabyte inputs.
LIMITS = Limits(max_message_bytes=4096, max_text_chars=300, max_body_chars=600)

CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"]


def forbidden(text: str) -> list[str]:
    return [c for c in text if c in CONTROLS or 0xD800 <= ord(c) <= 0xDFFF]


# Any code point, surrogates included, with control characters and surrogates
# made common enough to meet every field.
hostile_char = st.one_of(
    st.characters(codec=None, exclude_categories=()),
    st.sampled_from(CONTROLS + SURROGATES + ["\t", "\n", "\r", " ", "\u00a0", "\u2028"]),
)
hostile_text = st.text(hostile_char, max_size=40)
huge_int = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, -(10**4000)]),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    huge_int,
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(hostile_text, children, max_size=5)
    ),
    max_leaves=20,
)
# Whole-minute offsets within a day: what ISO 8601 and pydantic accept.
offset = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_time = st.datetimes(timezones=offset)
iso_time = aware_time.map(datetime.isoformat)
field_value = st.one_of(
    json_value,
    hostile_text,
    iso_time,
    st.datetimes().map(datetime.isoformat),  # naive
    st.lists(hostile_text, max_size=4),
    st.text(hostile_char, min_size=280, max_size=700),  # around the small limits
)


def to_bytes(value: object, ascii_only: bool) -> bytes:
    # allow_nan: json.dumps writes NaN/Infinity, which is not JSON; surrogatepass
    # turns lone surrogates into bytes that are not UTF-8.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def check(kind: str, raw: bytes, limits: Limits = LIMITS) -> ChatEvent | NewsEvent | DecodeError:
    result = decode(kind, raw, limits)
    if isinstance(result, DecodeError):
        assert result.reason in DECODE_REASONS
        assert isinstance(result.detail, str) and result.detail
        return result
    assert isinstance(result, ChatEvent if kind == "chat" else NewsEvent)
    names = CHAT_STRINGS if kind == "chat" else NEWS_STRINGS
    strings = [getattr(result, name) for name in names] + list(getattr(result, "tickers", []))
    for value in strings:
        if value is not None:
            assert not forbidden(value)
            value.encode("utf-8")  # no lone surrogate
    utc = result.ts.astimezone(UTC)
    assert EARLIEST_TS <= utc <= LATEST_TS
    assert len(result.text) <= limits.max_text_chars + limits.max_body_chars + 1
    return result


def test_the_documented_reasons():
    assert DECODE_REASONS == (
        "empty_value",
        "too_large",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "unsupported_schema_version",
        "schema_violation",
    )


@FUZZ
@given(kind=st.sampled_from(["chat", "news"]), raw=st.binary(max_size=300))
def test_random_bytes(kind, raw):
    check(kind, raw)


@FUZZ
@given(kind=st.sampled_from(["chat", "news"]), value=json_value, ascii_only=st.booleans())
@pytest.mark.slow
def test_random_json(kind, value, ascii_only):
    check(kind, to_bytes(value, ascii_only))


@FUZZ
@given(
    kind=st.sampled_from(["chat", "news"]),
    changes=st.dictionaries(
        st.sampled_from(sorted(set(CHAT) | set(NEWS) | {"extra"})), field_value, max_size=4
    ),
    ascii_only=st.booleans(),
)
@pytest.mark.slow
def test_near_valid_events(kind, changes, ascii_only):
    result = check(kind, to_bytes({**BASES[kind], **changes}, ascii_only))
    event("decoded" if isinstance(result, ChatEvent | NewsEvent) else result.reason)


@FUZZ
@given(kind=st.sampled_from(["chat", "news"]), moment=aware_time)
@example(kind="chat", moment=datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
@example(kind="news", moment=datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))))
@example(kind="chat", moment=datetime(1970, 1, 1, 0, 59, tzinfo=timezone(timedelta(hours=1))))
@example(kind="chat", moment=datetime(1970, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))))
@example(kind="chat", moment=LATEST_TS.astimezone(timezone(timedelta(hours=-5))))
def test_any_time_and_offset_is_accepted_exactly_when_it_is_in_range(kind, moment):
    result = check(kind, to_bytes({**BASES[kind], "ts": moment.isoformat()}, True))
    # Timedelta arithmetic does not overflow where datetime's would.
    since_earliest = (
        moment.replace(tzinfo=None) - EARLIEST_TS.replace(tzinfo=None)
    ) - moment.utcoffset()
    in_range = timedelta(0) <= since_earliest <= LATEST_TS - EARLIEST_TS
    if in_range:
        assert result.ts == moment
    else:
        assert isinstance(result, DecodeError)
        assert result.reason == "schema_violation"
        assert result.detail.startswith("ts: time must be from 1970-01-01T00:00:00Z")


@FUZZ
@given(
    where=st.sampled_from(
        [("chat", name) for name in CHAT_STRINGS if name != "role"]
        + [("news", name) for name in NEWS_STRINGS]
    ),
    before=st.text(st.characters(codec="utf-8", exclude_characters=CONTROLS), max_size=20),
    bad=st.sampled_from(CONTROLS),
    after=hostile_text,
)
@example(where=("chat", "text"), before="hello world", bad="\x00", after="")
def test_a_control_character_is_rejected_by_code_point_and_position(where, before, bad, after):
    kind, name = where
    value = "SECRET" + before + bad + after
    result = check(kind, to_bytes({**BASES[kind], name: value}, True))
    assert isinstance(result, DecodeError)
    assert "SECRET" not in result.detail
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        # An unpaired surrogate escape is the JSON parser's own rejection.
        assert result.reason in {"invalid_json", "schema_violation"}
        return
    first = forbidden(value)[0]
    assert result.reason == "schema_violation"
    code = f"U+{ord(first):04X}"
    assert f"{name}: control character {code} at position {value.index(first)}" in result.detail


@FUZZ
@given(
    kind=st.sampled_from(["chat", "news"]),
    extra=st.integers(min_value=-3, max_value=3),
    field=st.sampled_from(["text", "body"]),
)
def test_lengths_are_checked_against_the_configured_limits(kind, extra, field):
    name = {"chat": "text", "news": "headline" if field == "text" else "body"}[kind]
    setting = "max_body_chars" if name == "body" else "max_text_chars"
    limit = getattr(LIMITS, setting)
    result = check(kind, to_bytes({**BASES[kind], name: "é" * (limit + extra)}, False))
    if extra <= 0:
        assert isinstance(result, ChatEvent | NewsEvent)
    else:
        assert isinstance(result, DecodeError)
        assert result.reason == "schema_violation"
        assert result.detail == f"{name}: String should have at most {limit} characters ({setting})"


@pytest.mark.parametrize("kind", ["chat", "news"])
@pytest.mark.parametrize("size", [4095, 4096, 4097, 1_000_001])
def test_a_value_over_max_message_bytes_is_too_large(kind, size):
    raw = to_bytes({**BASES[kind], "pad": ""}, True)
    raw = raw[:-3] + b" " * (size - len(raw)) + raw[-3:]
    assert len(raw) == size
    result = check(kind, raw)
    if size > LIMITS.max_message_bytes:
        assert result == DecodeError(
            "too_large", f"value is {size} bytes; max_message_bytes is 4096"
        )
    else:
        assert isinstance(result, ChatEvent | NewsEvent)


@FUZZ
@given(
    kind=st.sampled_from(["chat", "news"]),
    field=st.sampled_from(sorted(set(CHAT) | set(NEWS))),
    sign=st.sampled_from([b"", b"-"]),
    digits=st.integers(min_value=1, max_value=6000),
    exponent=st.sampled_from([b"", b".5", b"e999999", b"E-999999"]),
)
def test_numbers_of_any_length_in_any_field(kind, field, sign, digits, exponent):
    raw = to_bytes({**BASES[kind], field: "NUMBER"}, True)
    check(kind, raw.replace(b'"NUMBER"', sign + b"9" * digits + exponent))


escape = st.one_of(
    st.sampled_from([b"\\b", b"\\f", b"\\n", b"\\t", b"\\r", b"\\\\", b"\\/", b'\\"']),
    st.tuples(st.integers(min_value=0, max_value=0xFFFF), st.booleans()).map(
        lambda pair: (b"\\u%04X" if pair[1] else b"\\u%04x") % pair[0]
    ),
    st.text("abc XYZ", min_size=1, max_size=3).map(str.encode),
)


@FUZZ
@given(
    where=st.sampled_from(
        [("chat", name) for name in CHAT_STRINGS if name != "role"]
        + [("news", name) for name in NEWS_STRINGS]
    ),
    pieces=st.lists(escape, min_size=1, max_size=8),
)
@example(where=("chat", "text"), pieces=[b"ok", b"\\u001F"])
@example(where=("news", "body"), pieces=[b"ok", b"\\b"])
@example(where=("news", "source"), pieces=[b"ok", b"\\f"])
def test_strings_written_with_escapes(where, pieces):
    # Escapes as a producer may write them (upper-case hex, \b, \f, escaped
    # backslashes), which json.dumps never does.
    kind, name = where
    literal = b"x" + b"".join(pieces)
    raw = to_bytes({**BASES[kind], name: "HERE"}, True).replace(b"HERE", literal)
    result = check(kind, raw)
    meant = json.loads(b'"' + literal + b'"')
    if forbidden(meant):
        assert isinstance(result, DecodeError)
        assert result.reason in {"schema_violation", "invalid_json"}


def test_surrogate_pairs_written_as_escapes_become_one_character():
    result = check("chat", to_bytes({**CHAT, "text": "ok \ud83d\ude00"}, True))
    assert isinstance(result, ChatEvent)
    assert result.text == "ok \U0001f600"
