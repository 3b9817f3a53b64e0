"""Input events (chat, news), validated on the way in, and the limits they are held to.

Input events are validated on the way in.  Decoding never raises on a bad
message: :func:`decode` returns either a valid event or a :class:`DecodeError`
that the run loop routes to the dead-letter topic with the raw bytes.

Unknown extra fields are ignored (a tolerant reader, so producers can add
fields before consumers know them); a ``schema_version`` newer than this
module understands is rejected.  What the store and the model cannot hold is
rejected too: values over the configured :class:`Limits`, control characters
in stored strings, and event times outside :data:`EARLIEST_TS` to :data:`LATEST_TS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails, PydanticCustomError

#: Version of the input schemas this code reads.
INPUT_SCHEMA_VERSION = 1
#: Version of the enriched event this code writes (and of the store schema).
ENRICHED_SCHEMA_VERSION = 1

Kind = Literal["chat", "news"]

#: Every reason :func:`decode` gives, in the order the checks run.
DECODE_REASONS = (
    "empty_value",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "unsupported_schema_version",
    "schema_violation",
)

#: Earliest event time accepted.  Kafka record timestamps and the integer form
#: of ``ts`` (Unix time) start here, so an earlier time is a producer's bug,
#: not a chat turn or a news story.
EARLIEST_TS = datetime(1970, 1, 1, tzinfo=UTC)
#: Latest event time accepted (inclusive).  One day short of Python's
#: ``datetime.max``: PostgreSQL returns ``timestamptz`` in the session's time
#: zone and psycopg cannot build a datetime after 9999-12-31, so a later instant
#: could be stored but not read back by a session east of UTC (offsets < 24 h).
LATEST_TS = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)


class LimitSettings(Protocol):
    """What :meth:`Limits.from_settings` reads: the stream settings group has these."""

    max_message_bytes: int
    max_text_chars: int
    max_body_chars: int


@dataclass(frozen=True)
class Limits:
    """Sizes :func:`decode` accepts; the defaults are the settings' defaults."""

    max_message_bytes: int = 1_000_000
    max_text_chars: int = 20_000
    max_body_chars: int = 200_000

    @classmethod
    def from_settings(cls, stream: LimitSettings) -> Limits:
        """The limits configured in ``stream`` (the stream settings group)."""
        return cls(
            max_message_bytes=stream.max_message_bytes,
            max_text_chars=stream.max_text_chars,
            max_body_chars=stream.max_body_chars,
        )


#: What :func:`decode` uses unless told otherwise.
DEFAULT_LIMITS = Limits()

# C0 controls other than tab, newline and carriage return: PostgreSQL text
# cannot hold U+0000 and the others are never meant as text.  Lone surrogates
# cannot be encoded as UTF-8 (the JSON parser already refuses them; this keeps
# model_validate on Python strings equally safe).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# The JSON parser refuses raw control characters inside strings, so a decoded
# string can only hold one written as an escape (\u0000-\u001f, \b, \f): when
# the raw bytes have none, the per-field scan is skipped.  Measured with timeit
# on a 133 KB article: the per-field regex 590 us, this one search of the raw
# bytes 70-140 us (four `in` tests for the escapes took 550-650 us); 2 KB: 6 us
# against 1 us.
_CONTROL_ESCAPE = re.compile(rb"\\(?:u00[01]|[bf])")


def _may_hold_controls(raw: bytes) -> bool:
    return _CONTROL_ESCAPE.search(raw) is not None


@dataclass(frozen=True)
class _Context:
    """What :func:`decode` tells the validators (pydantic validation context)."""

    limits: Limits
    scan_characters: bool


def _violation(error_type: str, template: str, **context: Any) -> PydanticCustomError:
    # A custom error keeps pydantic's "field: message" shape in the detail.
    return PydanticCustomError(error_type, template, context)


def _storable(value: Any, info: ValidationInfo) -> Any:
    # Runs before the string checks, so the position is in the value as sent
    # (before surrounding whitespace is stripped); non-strings are left to them.
    if not isinstance(value, str) or (
        isinstance(info.context, _Context) and not info.context.scan_characters
    ):
        return value
    if found := _FORBIDDEN.search(value):
        char = found.group()
        kind = "lone surrogate" if "\ud800" <= char <= "\udfff" else "control character"
        error = _violation(
            "forbidden_character",
            "{kind} {code_point} at position {position}",
            kind=kind,
            code_point=f"U+{ord(char):04X}",
            position=found.start(),
        )
        raise error
    return value


def _at_most(setting: Literal["max_text_chars", "max_body_chars"]) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        limits = info.context.limits if isinstance(info.context, _Context) else DEFAULT_LIMITS
        limit: int = getattr(limits, setting)
        if len(value) > limit:
            error = _violation(
                "string_too_long",
                "String should have at most {max_length} characters ({setting})",
                max_length=limit,
                setting=setting,
            )
            raise error
        return value

    return AfterValidator(check)


def _in_store_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        # Year 1 or 9999 with an offset that points past datetime's range.
        utc = None
    if utc is None or not EARLIEST_TS <= utc <= LATEST_TS:
        error = _violation(
            "ts_out_of_range",
            "time must be from {earliest} to {latest}",
            earliest=_iso(EARLIEST_TS),
            latest=_iso(LATEST_TS),
        )
        raise error
    return value


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    BeforeValidator(_storable),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    BeforeValidator(_storable),
]
# Chat text and news headline; the length limit is configured (max_text_chars).
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    BeforeValidator(_storable),
    _at_most("max_text_chars"),
]
Body = Annotated[str, BeforeValidator(_storable), _at_most("max_body_chars")]
# The pattern admits no control character, so no _storable here.
Ticker = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,11}$")]
EventTime = Annotated[AwareDatetime, AfterValidator(_in_store_range)]
# Strict: in lax mode pydantic takes 1.0, 1e0 and true for the integer 1 (a
# ``Literal[1]`` too, and a literal cannot be made strict), but a producer that
# writes them is not writing version 1 of this schema.
SchemaVersion = Annotated[int, Strict(), Field(ge=INPUT_SCHEMA_VERSION, le=INPUT_SCHEMA_VERSION)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: SchemaVersion = INPUT_SCHEMA_VERSION
    ts: EventTime = Field(description="Event time: when the message was written (UTC).")


class ChatEvent(_Input):
    """One chat turn, customer or agent."""

    message_id: Id
    conversation_id: Id
    channel: Label = Field(description="Where the chat happened: web, app, whatsapp, ...")
    role: Literal["customer", "agent"]
    text: Text

    @property
    def input_id(self) -> str:
        """Key of this event in the store and on the enriched topic."""
        return f"chat:{self.message_id}"


class NewsEvent(_Input):
    """One news article or headline."""

    article_id: Id
    source: Label
    headline: Text
    body: Body | None = None
    tickers: list[Ticker] = Field(default_factory=list, max_length=50)

    @property
    def input_id(self) -> str:
        """Key of this event in the store and on the enriched topic."""
        return f"news:{self.article_id}"

    @property
    def text(self) -> str:
        """What the classifier reads: the headline, then the body if any."""
        return f"{self.headline}\n{self.body}" if self.body else self.headline


InputEvent = ChatEvent | NewsEvent


@dataclass(frozen=True)
class DecodeError:
    """Why a raw message is not a valid event (a dead-letter reason)."""

    reason: str
    detail: str


def decode(
    kind: Kind, raw: bytes | None, limits: Limits = DEFAULT_LIMITS
) -> InputEvent | DecodeError:
    """Parse and validate one raw Kafka value; never raises, whatever the bytes.

    The reason of a :class:`DecodeError` is one of :data:`DECODE_REASONS`
    (``empty_value``, ``too_large``, ``invalid_utf8``, ``invalid_json``,
    ``not_an_object``, ``unsupported_schema_version``, ``schema_violation``),
    checked in that order.  Its detail says where and why, never what the
    message says (a forbidden character is named by code point and 0-based
    position).  ``limits`` bounds the value's bytes (``too_large``) and the
    text, headline and body lengths (``schema_violation``).
    """
    if raw is None:
        return DecodeError("empty_value", "message has no value (tombstone)")
    if len(raw) > limits.max_message_bytes:
        return DecodeError(
            "too_large",
            f"value is {len(raw)} bytes; max_message_bytes is {limits.max_message_bytes}",
        )
    model: type[ChatEvent] | type[NewsEvent] = ChatEvent if kind == "chat" else NewsEvent
    try:
        # One pass in Rust: UTF-8, JSON syntax and the schema (see
        # bench/decode_speed.py for the speed against json.loads + model_validate).
        context = _Context(limits, scan_characters=_may_hold_controls(raw))
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        return _reason(raw, exc.errors(include_url=False))
    except Exception as exc:  # the never-raises boundary
        # pydantic-core reports every bad input it knows as a ValidationError
        # (even 100,000 nested arrays or a 5,000-digit number, which made
        # json.loads raise); anything else is a parser failure on this message,
        # and the stream must move on past it.  The type only: its text may
        # quote the input.
        return DecodeError("invalid_json", f"the JSON parser failed: {type(exc).__name__}")


def _reason(raw: bytes, errors: list[ErrorDetails]) -> DecodeError:
    first = errors[0]
    if first["type"] == "json_invalid":
        # The parser checks UTF-8 as it reads strings, but a bad byte outside a
        # string is reported as a syntax error ("expected value"): only decoding
        # tells the two apart.  Bad messages only, so the valid path pays nothing.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return DecodeError("invalid_utf8", f"not valid UTF-8 at byte {bad.start}: {bad.reason}")
        # ctx["error"] is the parser's message and position, e.g. "EOF while
        # parsing a value at line 1 column 15"; the input is not in it.
        return DecodeError("invalid_json", str(first.get("ctx", {}).get("error", first["msg"])))
    if first["type"] == "model_type":
        return DecodeError(
            "not_an_object", f"expected a JSON object, got {_json_type(first['input'])}"
        )
    for error in errors:
        if error["loc"] == ("schema_version",):
            return DecodeError(
                "unsupported_schema_version",
                f"schema_version {_describe_version(error['input'])}; "
                f"this consumer reads {INPUT_SCHEMA_VERSION}",
            )
    return DecodeError("schema_violation", _summarise(errors))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "an object" if isinstance(value, dict) else "an array")


def _describe_version(value: Any) -> str:
    # A version number is shown as written; anything else only by its type and
    # size, since a producer may have put any text in the field.
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, float) or (isinstance(value, int) and abs(value) < 10**18):
        return repr(value)
    if isinstance(value, str):
        return (
            f"{value!r} (a string)" if len(value) <= 8 else f"a string of {len(value)} characters"
        )
    return _json_type(value)


def _summarise(errors: list[ErrorDetails]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
