"""Versioned event schemas: what comes in (chat, news), what goes out (enriched, dead letter).

- :mod:`pipeline.schema.inputs`: the input events (pydantic, validated on the way in) and
  :func:`decode`, which never raises on a bad message;
- :mod:`pipeline.schema.outputs`: the enriched event and the dead letter (msgspec records,
  built by the run loop from values it already checked).

Everything is re-exported here: import from ``pipeline.schema``.  May import: pydantic,
msgspec; nothing of attnwatch.
"""

from pipeline.schema.inputs import (
    DECODE_REASONS,
    DEFAULT_LIMITS,
    EARLIEST_TS,
    ENRICHED_SCHEMA_VERSION,
    INPUT_SCHEMA_VERSION,
    LATEST_TS,
    Body,
    ChatEvent,
    DecodeError,
    EventTime,
    Id,
    InputEvent,
    Kind,
    Label,
    Limits,
    LimitSettings,
    NewsEvent,
    SchemaVersion,
    Text,
    Ticker,
    decode,
)
from pipeline.schema.outputs import (
    DeadLetter,
    EnrichedEvent,
    LabelScore,
    ModelRef,
    Record,
    SourceRef,
    TaskResult,
    WordWeight,
)

__all__ = [
    "DECODE_REASONS",
    "DEFAULT_LIMITS",
    "EARLIEST_TS",
    "ENRICHED_SCHEMA_VERSION",
    "INPUT_SCHEMA_VERSION",
    "LATEST_TS",
    "Body",
    "ChatEvent",
    "DeadLetter",
    "DecodeError",
    "EnrichedEvent",
    "EventTime",
    "Id",
    "InputEvent",
    "Kind",
    "Label",
    "LabelScore",
    "LimitSettings",
    "Limits",
    "ModelRef",
    "NewsEvent",
    "Record",
    "SchemaVersion",
    "SourceRef",
    "TaskResult",
    "Text",
    "Ticker",
    "WordWeight",
    "decode",
]
