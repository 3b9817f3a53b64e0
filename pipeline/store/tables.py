"""The analyst store's schema: column types, tables, and how events become rows.

``events`` is keyed by input id and ``dead_letters`` by Kafka position, which is
what makes writes idempotent (see :mod:`pipeline.store.writes`).  The layout has its
own version, :data:`STORE_SCHEMA_VERSION`, recorded in ``store_meta``:

- 1: ``events``, ``dead_letters`` (coordinates, reason, detail, raw value, received time);
- 2: ``dead_letters`` also keeps the input's ``key``, ``headers`` and
  ``source_timestamp``, and ``replayed_time`` (set by ``attnwatch deadletter replay``).
  A version-1 store gains these columns (empty for old rows) when it is opened.
- 3: ``events`` also keeps ``intent_faithful`` and ``sentiment_faithful``: whether
  training found the task's logged attention faithful (NULL: not measured, or a row
  written before version 3).
- 4: ``events`` also keeps ``sentiment_evidence_attention``: the news evidence sentence's
  own word weights (NULL without evidence, or in a row written before version 4).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from pipeline.schema import DeadLetter, EnrichedEvent

_ENCODER = msgspec.json.Encoder()

#: Version of the store's layout this code writes (see the module docstring).
STORE_SCHEMA_VERSION = 4

JSON_COLUMNS = (
    "tickers",
    "intent_top",
    "intent_attention",
    "sentiment_top",
    "sentiment_attention",
    "sentiment_evidence_attention",
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as timezone-aware UTC on every back end.

    PostgreSQL's ``timestamptz`` keeps the instant but returns it in the session's
    time zone; SQLite has no time zone type at all.  So values are normalised to UTC
    on the way in (stored naive-UTC in SQLite, which keeps text order = time order)
    and tagged or converted to UTC on the way out.  Naive datetimes are refused: an
    unlabelled time is a bug upstream, and guessing its zone would corrupt data.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive UTC for SQLite); refuse naive datetimes."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            msg = f"naive datetime {value.isoformat()} given; the store needs timezone-aware times"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            msg = f"expected a datetime from the database, got {type(value).__name__}"
            raise TypeError(msg)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EncodedJSON(str):
    """JSON text already encoded (by msgspec, from the records): stored as it is."""

    __slots__ = ()


def encoded(value: Any) -> EncodedJSON:
    """``value`` (records, lists of them, plain values) as compact UTF-8 JSON text.

    msgspec encodes a word list in ~0.1 us a word; ``model_dump`` per word and then
    ``json.dumps`` took ~2.5 us, the store's largest cost per message (decision 0021).
    """
    return EncodedJSON(_ENCODER.encode(value).decode("utf-8"))


class JSONText(sa.TypeDecorator[Any]):
    """A JSON value stored as plain text (not ``json``/``jsonb``).

    Text keeps one schema and one ``LIKE`` filter for both back ends; analysts
    read the parsed value, never the text.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any | None, dialect: Dialect) -> str | None:
        """Serialise to compact JSON (non-ASCII kept as is); :class:`EncodedJSON` as is."""
        if value is None:
            return None
        if isinstance(value, EncodedJSON):
            return str(value)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Any:
        """Parse the stored JSON text."""
        if value is None:
            return None
        return json.loads(value)


KafkaHeaders = tuple[tuple[str, bytes], ...]


class HeadersText(sa.TypeDecorator[KafkaHeaders]):
    """Kafka record headers, stored as JSON text: ``[[name, base64 of the value], ...]``.

    Header values are arbitrary bytes, so they are base64-encoded (standard alphabet,
    padded); names are text.  Order and repeated names are kept, as Kafka keeps them.
    Read back as a tuple of ``(name, bytes)`` pairs, like ``DeadLetter.headers``;
    ``NULL`` (a row written before version 2) reads back as ``None``.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: KafkaHeaders | None, dialect: Dialect) -> str | None:
        """Encode as a JSON list of ``[name, base64 value]`` pairs."""
        if value is None:
            return None
        pairs = [[name, base64.b64encode(data).decode("ascii")] for name, data in value]
        return json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any | None, dialect: Dialect) -> KafkaHeaders | None:
        """Decode the stored pairs; refuse text that is not this encoding."""
        if value is None:
            return None
        try:
            return tuple(
                (str(name), base64.b64decode(data, validate=True))
                for name, data in json.loads(value)
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            msg = "stored dead-letter headers are not a JSON list of [name, base64] pairs"
            raise ValueError(msg) from exc


def serial_id() -> sa.Column[int]:
    """An auto-numbered ``id`` primary key: BIGSERIAL on PostgreSQL, INTEGER on SQLite.

    SQLite only auto-numbers a column typed exactly INTEGER.
    """
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


#: The one schema: every table of the store is declared on this (see
#: :mod:`pipeline.store.schema`, which imports them all) and created by Alembic's revisions.
metadata = sa.MetaData()

#: Alembic's own bookkeeping (the store's revision), declared so that the schema is whole:
#: ``metadata.drop_all`` empties a store completely and a reflected copy compares equal.
#: Alembic creates and writes it; autogenerate leaves it out.
alembic_version_table = sa.Table(
    "alembic_version",
    metadata,
    sa.Column("version_num", sa.String(32), primary_key=True),
)

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("input_id", sa.Text, primary_key=True),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("conversation_id", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("article_id", sa.Text),
    sa.Column("news_source", sa.Text),
    sa.Column("tickers", JSONText, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent_label", sa.Text),
    sa.Column("intent_score", sa.Float),
    sa.Column("intent_top", JSONText),
    sa.Column("intent_attention", JSONText),
    sa.Column("sentiment_label", sa.Text, nullable=False),
    sa.Column("sentiment_score", sa.Float, nullable=False),
    sa.Column("sentiment_top", JSONText, nullable=False),
    sa.Column("sentiment_attention", JSONText, nullable=False),
    sa.Column("sentiment_evidence", sa.Text),
    # Version 3 (NULL in older rows): the model's verdict on its own attention per task.
    sa.Column("intent_faithful", sa.Boolean),
    sa.Column("sentiment_faithful", sa.Boolean),
    # Version 4 (NULL without evidence and in older rows): the evidence sentence's own words.
    sa.Column("sentiment_evidence_attention", JSONText),
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("tokenizer_hash", sa.Text, nullable=False),
    sa.Column("event_time", UTCDateTime, nullable=False),
    sa.Column("processed_time", UTCDateTime, nullable=False),
    sa.Column("model_latency_ms", sa.Float, nullable=False),
    sa.Column("end_to_end_latency_ms", sa.Float, nullable=False),
    sa.Index("ix_events_event_time", "event_time"),
    sa.Index("ix_events_kind_event_time", "kind", "event_time"),
    sa.Index("ix_events_intent_label", "intent_label"),
    sa.Index("ix_events_sentiment_label", "sentiment_label"),
)

dead_letters_table = sa.Table(
    "dead_letters",
    metadata,
    serial_id(),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary),
    sa.Column("received_time", UTCDateTime, nullable=False),
    # Version 2: the rest of the input record, so a replay re-sends exactly what arrived
    # (NULL in rows written by version 1), and when it was last replayed.
    sa.Column("key", sa.LargeBinary),
    sa.Column("headers", HeadersText),
    sa.Column("source_timestamp", UTCDateTime),
    sa.Column("replayed_time", UTCDateTime),
    sa.UniqueConstraint(
        "source_topic", "source_partition", "source_offset", name="uq_dead_letters_source"
    ),
)

store_meta_table = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

DEAD_LETTER_KEY = ("source_topic", "source_partition", "source_offset")
#: Columns added by each store version, as (table, column) pairs: what a migration adds.
ADDED_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {
    2: tuple(("dead_letters", c) for c in ("key", "headers", "source_timestamp", "replayed_time")),
    3: (("events", "intent_faithful"), ("events", "sentiment_faithful")),
    4: (("events", "sentiment_evidence_attention"),),
}


def event_row(event: EnrichedEvent) -> dict[str, Any]:
    """The ``events`` row of an enriched event."""
    intent = event.intent
    sentiment = event.sentiment
    return {
        "input_id": event.input_id,
        "schema_version": event.schema_version,
        "kind": event.kind,
        "source_topic": event.source.topic,
        "source_partition": event.source.partition,
        "source_offset": event.source.offset,
        "message_id": event.message_id,
        "conversation_id": event.conversation_id,
        "channel": event.channel,
        "role": event.role,
        "article_id": event.article_id,
        "news_source": event.news_source,
        "tickers": encoded(event.tickers),
        "text": event.text,
        "intent_label": intent.label if intent else None,
        "intent_score": intent.score if intent else None,
        "intent_top": encoded(intent.top) if intent else None,
        "intent_attention": encoded(intent.attention) if intent else None,
        "sentiment_label": sentiment.label,
        "sentiment_score": sentiment.score,
        "sentiment_top": encoded(sentiment.top),
        "sentiment_attention": encoded(sentiment.attention),
        "sentiment_evidence": sentiment.evidence,
        "intent_faithful": intent.attention_faithful if intent else None,
        "sentiment_faithful": sentiment.attention_faithful,
        "sentiment_evidence_attention": (
            None if sentiment.evidence_attention is None else encoded(sentiment.evidence_attention)
        ),
        "model_name": event.model.name,
        "model_version": event.model.version,
        "tokenizer_hash": event.model.tokenizer_hash,
        "event_time": event.event_time,
        "processed_time": event.processed_time,
        "model_latency_ms": event.model_latency_ms,
        "end_to_end_latency_ms": event.end_to_end_latency_ms,
    }


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """The ``dead_letters`` row of a dead letter."""
    return {
        "source_topic": letter.source.topic,
        "source_partition": letter.source.partition,
        "source_offset": letter.source.offset,
        "reason": letter.reason,
        "detail": letter.detail,
        "raw": letter.raw,
        "received_time": letter.received_time,
        "key": letter.key,
        "headers": letter.headers,
        "source_timestamp": letter.source_timestamp,
    }
