"""What attnwatch writes: enriched events (msgspec records) and dead letters.

Enriched events are built by the run loop from its own, already checked values, once per
message and with one entry per word of the text in each task's attention: as pydantic
models they cost 2 us a word to build (1.5 us even through ``model_construct`` or Rust
validation) and 0.35 us to dump, most of the run loop's own cost on news bodies.  As
``msgspec`` structs they cost 0.08 us to build and 0.09 us to encode (decision 0021,
``bench/RESULTS.md``).  They are validated where they are *read* (``model_validate``,
``model_validate_json``: msgspec checks types and the constraints below).

They keep the method names the code used with pydantic (``model_copy(update=...)``,
``model_dump``, ``model_dump_json``, ``model_validate``, ``model_validate_json``), so every
caller reads the same; the JSON they write is the same: fields in declaration order, nulls
kept, UTC times with a ``Z``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Annotated, Any, Self

import msgspec

from pipeline.schema.inputs import ENRICHED_SCHEMA_VERSION, Kind

_ENCODER = msgspec.json.Encoder()
Offset = Annotated[int, msgspec.Meta(ge=0)]


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable output record with pydantic's method names (see the module docstring)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with the fields in ``update`` replaced (not validated)."""
        return msgspec.structs.replace(self, **(update or {}))

    def model_dump(self, *, exclude: Collection[str] = ()) -> dict[str, Any]:
        """Plain Python values, nested records as dicts, datetimes and bytes kept."""
        data: dict[str, Any] = msgspec.to_builtins(self, builtin_types=(datetime, bytes))
        for name in exclude:
            data.pop(name, None)
        return data

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (what the enriched topic carries)."""
        return _ENCODER.encode(self)

    def model_dump_json(self) -> str:
        """:meth:`to_json` as text."""
        return self.to_json().decode("utf-8")

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Build from plain values (a dict), checking types and constraints."""
        return msgspec.convert(data, type=cls)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Self:
        """Parse and check JSON; raises ``msgspec.ValidationError`` or ``DecodeError``."""
        return msgspec.json.decode(data, type=cls)


class WordWeight(Record, frozen=True, kw_only=True):
    """One word of the message and the attention weight the head gave it.

    Words are split from their punctuation (``models.words``).  Offsets count in the text
    the word was weighed in: the event's ``text`` for ``attention``, ``evidence`` for
    ``evidence_attention``.  Events written before offsets were logged have ``start`` and
    ``end`` None and are shaded by matching words.
    """

    word: str
    weight: float
    #: Character offset of the word in the event's ``text`` (in ``evidence`` for
    #: ``evidence_attention``): ``text[start:end] == word``.  None in events written before
    #: offsets were logged.
    start: Offset | None = None
    #: Character offset just past the word (see ``start``).
    end: Offset | None = None


class LabelScore(Record, frozen=True, kw_only=True):
    """A label and its probability."""

    label: str
    score: float


class TaskResult(Record, frozen=True, kw_only=True):
    """One head's decision: the label, its probability, runners-up and the words behind it.

    For a news article with a body the decision aggregates its sentences (see
    ``models.long_text``) and ``evidence`` names the sentence that carried it;
    ``evidence_attention`` is that sentence's own shading.
    """

    label: str
    score: float
    top: list[LabelScore]
    attention: list[WordWeight]
    #: Long news: the sentence that carried the most weight for the label.
    evidence: str | None = None
    #: Long news: the evidence sentence's own word weights (summing to 1, not scaled by its
    #: share of the article; word offsets count from the start of ``evidence``).  None
    #: without evidence, in events written before it existed, or when dropped so that the
    #: enriched record fits max_message_bytes.
    evidence_attention: list[WordWeight] | None = None
    #: Words dropped from ``attention`` (its lowest weights) so that the enriched record fits
    #: max_message_bytes; None when nothing was dropped.
    attention_truncated: int | None = None
    #: Did training find this task's logged attention faithful (its top words carry the
    #: decision: ERASER comprehensiveness >= 2x random words and >= gradient x input on
    #: validation)?  False: the shading does not explain the label.  None: not measured or
    #: not judged.
    attention_faithful: bool | None = None


class SourceRef(Record, frozen=True, kw_only=True):
    """Where the input came from: enough to find it again in Kafka."""

    topic: str
    partition: int
    offset: int


class ModelRef(Record, frozen=True, kw_only=True):
    """What produced the labels: enough to reproduce them."""

    name: str
    version: str
    tokenizer_hash: str


class EnrichedEvent(Record, frozen=True, kw_only=True):
    """An input event with its labels, scores, attention and timings."""

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
    tickers: list[str] = msgspec.field(default_factory=list)
    text: str
    #: Customer chat turns only.
    intent: TaskResult | None = None
    sentiment: TaskResult
    model: ModelRef
    event_time: datetime
    processed_time: datetime
    model_latency_ms: float
    #: processed_time - event_time, in ms.
    end_to_end_latency_ms: float


class DeadLetter(Record, frozen=True, kw_only=True):
    """A message that could not be processed: the reason and the original record, untouched.

    ``raw`` is ``None`` for a null value (a tombstone) and ``b""`` for an empty one; ``key``,
    ``headers`` and ``source_timestamp`` are the input record's own, so a replay after a fix
    re-sends exactly what arrived.
    """

    source: SourceRef
    reason: str
    detail: str
    raw: bytes | None
    received_time: datetime
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    #: The input record's Kafka timestamp (UTC).
    source_timestamp: datetime | None = None
