"""Versioned event schemas: what comes in (chat, news), what goes out (enriched, dead letter).

Input events are validated on the way in.  Decoding never raises on a bad
message: :func:`decode` returns either a valid event or a :class:`DecodeError`
that the run loop routes to the dead-letter topic with the raw bytes.

Unknown extra fields are ignored (a tolerant reader, so producers can add
fields before consumers know them); a ``schema_version`` newer than this
module understands is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails

#: Version of the input schemas this code reads.
INPUT_SCHEMA_VERSION = 1
#: Version of the enriched event this code writes (and of the store schema).
ENRICHED_SCHEMA_VERSION = 1

Kind = Literal["chat", "news"]

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Ticker = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,11}$")]
# Strict: in lax mode pydantic takes 1.0, 1e0 and true for the integer 1 (a
# ``Literal[1]`` too, and a literal cannot be made strict), but a producer that
# writes them is not writing version 1 of this schema.
SchemaVersion = Annotated[int, Strict(), Field(ge=INPUT_SCHEMA_VERSION, le=INPUT_SCHEMA_VERSION)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: SchemaVersion = INPUT_SCHEMA_VERSION
    ts: AwareDatetime = Field(description="Event time: when the message was written (UTC).")


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
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
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


def decode(kind: Kind, raw: bytes | None) -> InputEvent | DecodeError:
    """Parse and validate one raw Kafka value; never raises, whatever the bytes.

    The reason of a :class:`DecodeError` is one of ``empty_value``,
    ``invalid_utf8``, ``invalid_json``, ``not_an_object``,
    ``unsupported_schema_version`` and ``schema_violation``, checked in that
    order.  Its detail says where and why, never what the message says.
    """
    if raw is None:
        return DecodeError("empty_value", "message has no value (tombstone)")
    model: type[ChatEvent] | type[NewsEvent] = ChatEvent if kind == "chat" else NewsEvent
    try:
        # One pass in Rust: UTF-8, JSON syntax and the schema (see
        # bench/decode_speed.py for the speed against json.loads + model_validate).
        return model.model_validate_json(raw)
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


# ---------------------------------------------------------------------------
# Output


class WordWeight(BaseModel):
    """One word of the message and the attention weight the head gave it."""

    word: str
    weight: float


class LabelScore(BaseModel):
    """A label and its probability."""

    label: str
    score: float


class TaskResult(BaseModel):
    """One head's decision: the label, its probability, runners-up and the words behind it.

    For a news article with a body the decision aggregates its sentences (see
    ``models.long_text``) and ``evidence`` names the sentence that carried it.
    """

    label: str
    score: float
    top: list[LabelScore]
    attention: list[WordWeight]
    evidence: str | None = Field(
        None, description="Long news: the sentence that carried the most weight for the label."
    )


class SourceRef(BaseModel):
    """Where the input came from: enough to find it again in Kafka."""

    topic: str
    partition: int
    offset: int


class ModelRef(BaseModel):
    """What produced the labels: enough to reproduce them."""

    name: str
    version: str
    tokenizer_hash: str


class EnrichedEvent(BaseModel):
    """An input event with its labels, scores, attention and timings."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = ENRICHED_SCHEMA_VERSION
    input_id: str
    kind: Kind
    source: SourceRef
    # chat fields
    message_id: str | None = None
    conversation_id: str | None = None
    channel: str | None = None
    role: str | None = None
    # news fields
    article_id: str | None = None
    news_source: str | None = None
    tickers: list[str] = Field(default_factory=list)
    text: str
    intent: TaskResult | None = Field(None, description="Customer chat turns only.")
    sentiment: TaskResult
    model: ModelRef
    event_time: datetime
    processed_time: datetime
    model_latency_ms: float
    end_to_end_latency_ms: float = Field(description="processed_time - event_time, in ms.")


class DeadLetter(BaseModel):
    """A message that could not be processed: the reason and the original record, untouched.

    ``raw`` is ``None`` for a null value (a tombstone) and ``b""`` for an empty one; ``key``,
    ``headers`` and ``source_timestamp`` are the input record's own, so a replay after a fix
    re-sends exactly what arrived.
    """

    model_config = ConfigDict(frozen=True)

    source: SourceRef
    reason: str
    detail: str
    raw: bytes | None
    received_time: datetime
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    source_timestamp: datetime | None = Field(
        None, description="The input record's Kafka timestamp (UTC)."
    )
