"""Versioned event schemas: what comes in (chat, news), what goes out (enriched, dead letter).

Input events are validated on the way in.  Decoding never raises on a bad
message: :func:`decode` returns either a valid event or a :class:`DecodeError`
that the run loop routes to the dead-letter topic with the raw bytes.

Unknown extra fields are ignored (a tolerant reader, so producers can add
fields before consumers know them); a ``schema_version`` newer than this
module understands is rejected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

#: Version of the input schemas this code reads.
INPUT_SCHEMA_VERSION = 1
#: Version of the enriched event this code writes (and of the store schema).
ENRICHED_SCHEMA_VERSION = 1

Kind = Literal["chat", "news"]

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Ticker = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,11}$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
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
    """Parse and validate one raw Kafka value; never raises on bad input."""
    if raw is None:
        return DecodeError("empty_value", "message has no value (tombstone)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeError("invalid_utf8", str(exc))
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return DecodeError("invalid_json", str(exc))
    if not isinstance(payload, dict):
        return DecodeError("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    version = payload.get("schema_version", INPUT_SCHEMA_VERSION)
    if version != INPUT_SCHEMA_VERSION:
        return DecodeError(
            "unsupported_schema_version",
            f"schema_version {version!r}; this consumer reads {INPUT_SCHEMA_VERSION}",
        )
    model: type[ChatEvent] | type[NewsEvent] = ChatEvent if kind == "chat" else NewsEvent
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        return DecodeError("schema_violation", _summarise(exc))


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
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
    """A message that could not be processed, with the reason and the raw bytes."""

    model_config = ConfigDict(frozen=True)

    source: SourceRef
    reason: str
    detail: str
    raw: bytes | None
    received_time: datetime
