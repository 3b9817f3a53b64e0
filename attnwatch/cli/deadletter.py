"""Dead-letter commands: ``deadletter list`` and ``deadletter replay``, over the analyst store.

The store keeps each dead letter's original record (value, key, headers, timestamp,
from store schema version 2), so ``replay`` can re-send exactly what arrived once the
cause is fixed.  Replay is safe to repeat:

- a replayed record is a new message at a new offset; if it now decodes, its enriched
  event is keyed by the *input id* (``chat:<message_id>``, ``news:<article_id>``) in the
  store, where writes are insert-or-ignore, and on the enriched topic, so anything that
  was already processed once is not stored twice and replaces itself on the topic;
- if it fails again it becomes a new dead letter (at its new offset) and the old one
  stays marked as replayed;
- ``replayed_time`` is set only after the broker acknowledged the send, and records
  already marked are skipped unless ``--again``: a crash between the acks and the
  mark re-sends those records next time, which the keys above make harmless.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
import typer
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from attnwatch.cli.app import console, fail, state
from pipeline.errors import AttnwatchError
from pipeline.sinks.topics import HEADER_PREFIX
from pipeline.store import Store, open_store, read_dead_letters

deadletter_app = typer.Typer(
    help="Inspect and replay dead letters kept in the analyst store (--store-url).",
    no_args_is_help=True,
)

#: Longest detail shown in the table (the full text is in --json).
DETAIL_WIDTH = 60


def _parse_time(value: str) -> datetime:
    """An ISO-8601 time with a zone (``2025-03-01T12:00:00Z``, ``...+02:00``)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not an ISO-8601 time (e.g. 2025-03-01T12:00:00Z)"
        raise typer.BadParameter(msg) from None
    if when.tzinfo is None or when.utcoffset() is None:
        msg = f"{value!r} has no time zone; add Z or an offset such as +02:00"
        raise typer.BadParameter(msg)
    return when


Reasons = Annotated[
    list[str] | None,
    typer.Option("--reason", help="Only this reason (repeat for several), e.g. invalid_json."),
]
Since = Annotated[
    datetime | None,
    typer.Option(
        parser=_parse_time,
        metavar="TIME",
        help="Received at or after this ISO-8601 time with a zone (2025-03-01T12:00Z).",
    ),
]
Until = Annotated[
    datetime | None,
    typer.Option(parser=_parse_time, metavar="TIME", help="Received before this time."),
]
Topic = Annotated[str | None, typer.Option(help="Only dead letters from this source topic.")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many dead letters.")]


@dataclass(frozen=True)
class _Letter:
    """One stored dead letter, as the commands use it."""

    id: int
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    received_time: datetime
    source_timestamp: datetime | None
    replayed_time: datetime | None
    raw: bytes | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...] | None

    @classmethod
    def from_row(cls, row: dict[Any, Any]) -> _Letter:
        return cls(
            id=int(row["id"]),
            reason=str(row["reason"]),
            detail=str(row["detail"]),
            topic=str(row["source_topic"]),
            partition=int(row["source_partition"]),
            offset=int(row["source_offset"]),
            received_time=pd.Timestamp(row["received_time"]).to_pydatetime(),
            source_timestamp=_time(row["source_timestamp"]),
            replayed_time=_time(row["replayed_time"]),
            raw=_bytes(row["raw"]),
            key=_bytes(row["key"]),
            headers=tuple(row["headers"]) if isinstance(row["headers"], tuple) else None,
        )

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def _time(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp: datetime = pd.Timestamp(value).to_pydatetime()
    return stamp


def _bytes(value: Any) -> bytes | None:
    # pandas may hand a missing value back as NaN rather than None.
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _select(
    store: Store,
    *,
    reasons: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    topic: str | None,
    limit: int,
    replayed: bool | None = None,
    oldest_first: bool = False,
) -> list[_Letter]:
    frame = read_dead_letters(
        store,
        limit,
        reasons=reasons or None,
        since=since,
        until=until,
        topic=topic,
        replayed=replayed,
        oldest_first=oldest_first,
    )
    return [_Letter.from_row(row) for row in frame.to_dict("records")]


def _open() -> Store:
    try:
        return open_store(state.settings.store.url)
    except AttnwatchError as exc:
        fail(exc)


def _size(value: bytes | None) -> str:
    return "null" if value is None else f"{len(value)} B"


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat()


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


def _as_json(letter: _Letter, show_value: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": letter.id,
        "reason": letter.reason,
        "detail": letter.detail,
        "source": {"topic": letter.topic, "partition": letter.partition, "offset": letter.offset},
        "received_time": letter.received_time.isoformat(),
        "source_timestamp": _iso_or_none(letter.source_timestamp),
        "value_size": None if letter.raw is None else len(letter.raw),
        "key_size": None if letter.key is None else len(letter.key),
        "header_names": None if letter.headers is None else [n for n, _ in letter.headers],
        "replayed_time": _iso_or_none(letter.replayed_time),
    }
    if show_value:
        out["value_base64"] = _b64(letter.raw)
        out["key_base64"] = _b64(letter.key)
        out["headers"] = (
            None if letter.headers is None else [[n, _b64(v)] for n, v in letter.headers]
        )
    return out


@deadletter_app.command("list")
def list_command(
    reason: Reasons = None,
    since: Since = None,
    until: Until = None,
    topic: Topic = None,
    limit: Limit = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    show_value: Annotated[
        bool,
        typer.Option(
            help="Also print the raw value, key and header values (they may hold customer "
            "text; without this flag only their sizes and header names are shown)."
        ),
    ] = False,
) -> None:
    """List stored dead letters, most recently received first."""
    with _open() as store:
        try:
            letters = _select(
                store, reasons=reason, since=since, until=until, topic=topic, limit=limit
            )
        except AttnwatchError as exc:
            fail(exc)
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(_as_json(letter, show_value), ensure_ascii=False))
        return
    if not letters:
        typer.echo("no dead letters match")
        return
    header = ["ID", "REASON", "DETAIL", "SOURCE", "RECEIVED", "VALUE", "REPLAYED"]
    rows = [
        [
            str(letter.id),
            letter.reason,
            _short(letter.detail),
            letter.source,
            _iso(letter.received_time),
            _size(letter.raw),
            _iso(letter.replayed_time),
        ]
        for letter in letters
    ]
    typer.echo(_table(header, rows))
    if show_value:
        for letter in letters:
            value = "null" if letter.raw is None else repr(letter.raw)
            key = "null" if letter.key is None else repr(letter.key)
            headers = [(n, v) for n, v in letter.headers or ()]
            typer.echo(f"\n{letter.id}: value={value} key={key} headers={headers!r}")


@deadletter_app.command("replay")
def replay_command(
    reason: Reasons = None,
    since: Since = None,
    until: Until = None,
    topic: Topic = None,
    limit: Limit = 50,
    to_topic: Annotated[
        str | None, typer.Option(help="Send here instead of each record's source topic.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent; send nothing.")] = False,
    again: Annotated[
        bool, typer.Option(help="Also replay dead letters that were already replayed.")
    ] = False,
) -> None:
    """Re-send dead letters' original value, key and headers to their source topic.

    Oldest first.  The attnwatch.* headers are removed; the record gets a new Kafka
    timestamp (the original's could be past the topic's retention).  Each record is
    marked replayed once the broker acknowledged it, and marked records are skipped
    unless --again.  Needs --bootstrap-servers (the embedded broker is not started).

    Replay does not duplicate what was already processed: the store keeps one row per
    input id (insert-or-ignore) and the enriched topic is keyed by input id, so a record
    that is processed twice is stored once and replaces itself on the topic.  A record
    that fails again becomes a new dead letter.
    """
    settings = state.settings
    with _open() as store:
        try:
            letters = _select(
                store,
                reasons=reason,
                since=since,
                until=until,
                topic=topic,
                limit=limit,
                replayed=None if again else False,
                oldest_first=True,
            )
        except AttnwatchError as exc:
            fail(exc)
        sendable = [letter for letter in letters if not _unsendable(letter)]
        for letter in letters:
            if _unsendable(letter):
                console.print(
                    f"skipped dead letter {letter.id} ({letter.source}): a null value without "
                    "a key cannot be produced (kafka-python refuses it)",
                    highlight=False,
                    soft_wrap=True,
                )
        if not sendable:
            typer.echo("nothing to replay")
            return
        if dry_run:
            for letter in sendable:
                typer.echo(
                    f"would send dead letter {letter.id} ({letter.reason}, {_size(letter.raw)}) "
                    f"from {letter.source} to {to_topic or letter.topic}"
                )
            typer.echo(f"dry run: {len(sendable)} dead letters would be replayed")
            return
        try:
            connection = settings.kafka.connection()
        except AttnwatchError as exc:
            fail(exc)
        from consumers.producer import make_producer

        try:
            producer = make_producer(connection, timeout_s=settings.stream.io_timeout_s)
        except KafkaError as exc:
            fail(AttnwatchError(f"could not connect to Kafka: {exc}"))
        try:
            acked, error = _send(producer, sendable, to_topic, settings.stream.io_timeout_s)
        finally:
            producer.close(timeout=settings.stream.io_timeout_s)
        try:
            store.mark_replayed(acked, datetime.now(UTC))
        except AttnwatchError as exc:
            fail(
                AttnwatchError(
                    f"{len(acked)} dead letters were re-sent but not marked replayed ({exc}); "
                    "a later replay sends them again, which is harmless (see --help)"
                )
            )
    typer.echo(f"replayed {len(acked)} of {len(sendable)} dead letters")
    if error is not None:
        fail(AttnwatchError(f"{len(sendable) - len(acked)} not acknowledged: {error}"))


def _unsendable(letter: _Letter) -> bool:
    return letter.raw is None and letter.key is None


def _send(
    producer: KafkaProducer, letters: list[_Letter], to_topic: str | None, timeout_s: float
) -> tuple[list[int], str | None]:
    """Send every letter, wait (at most ``timeout_s``) for the acks; the acked ids and an error."""
    futures: list[tuple[int, FutureRecordMetadata]] = []
    error: str | None = None
    for letter in letters:
        headers = [(n, v) for n, v in letter.headers or () if not n.startswith(HEADER_PREFIX)]
        try:
            future = producer.send(
                to_topic or letter.topic, value=letter.raw, key=letter.key, headers=headers
            )
        except KafkaError as exc:
            # Most likely the topic or the broker is unavailable: the rest would fail too.
            error = f"dead letter {letter.id}: {exc}"
            break
        futures.append((letter.id, future))
    deadline = time.monotonic() + timeout_s
    try:
        producer.flush(timeout=timeout_s)
    except KafkaError as exc:
        error = error or str(exc)
    acked = []
    for letter_id, future in futures:
        try:
            future.get(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaError as exc:
            error = error or f"dead letter {letter_id}: {exc}"
            continue
        acked.append(letter_id)
    return acked, error
