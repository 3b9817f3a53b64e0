"""The feed's rows as files: CSV and Parquet, both written chunk by chunk and capped.

Both hold the columns :func:`pipeline.store.read_events` returns.  CSV is streamed: one
keyset query of :data:`~dashboards.data.queries.EXPORT_CHUNK` rows at a time is written out
before the next is read, so memory stays flat; times are ISO 8601 UTC and the JSON
columns (tickers, runners-up, attention) JSON text.  A Parquet file needs its footer
before it can be read, so it is built in memory, one row group per chunk: what is held is
the compressed file so far plus one chunk, and the row cap
(:data:`~dashboards.data.queries.MAX_EXPORT_ROWS`) bounds the file.  Its schema is fixed
(:func:`arrow_schema`, from the ``events`` table), so every chunk has the same types
whatever it holds: JSON columns keep their nesting (lists of ``{word, weight}`` and
``{label, score}`` structs) and times are UTC timestamps.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import sqlalchemy as sa

from dashboards.data.filters import EventFilter
from dashboards.data.queries import Queries
from pipeline.store.tables import JSON_COLUMNS, UTCDateTime, events_table

TIME_COLUMNS = ("event_time", "processed_time")
COLUMNS = [c.name for c in events_table.columns]


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in JSON_COLUMNS:
        out[column] = [
            "" if value is None else json.dumps(value, ensure_ascii=False) for value in out[column]
        ]
    for column in TIME_COLUMNS:
        out[column] = out[column].map(lambda t: t.isoformat())
    return out


def csv_chunks(queries: Queries, f: EventFilter, limit: int) -> Iterator[str]:
    """The CSV text of at most ``limit`` events matching ``f``, newest first, in pieces."""
    header = True
    for frame in queries.export_frames(f, limit):
        yield _csv_ready(frame).to_csv(index=False, header=header, lineterminator="\n")
        header = False
    if header:
        yield ",".join(COLUMNS) + "\n"


def _json_type(column: str) -> pa.DataType:
    """The Arrow type of a JSON column (JSON text for one this module does not know)."""
    if column == "tickers":
        return pa.list_(pa.string())
    if column.endswith("_top"):
        return pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))
    if column.endswith("_attention"):
        # start/end: the word's character offsets (null in events logged before them).
        word = [("word", pa.string()), ("weight", pa.float64())]
        return pa.list_(pa.struct([*word, ("start", pa.int64()), ("end", pa.int64())]))
    return pa.string()


def arrow_schema() -> pa.Schema:
    """The Parquet schema of an export: the ``events`` table's columns, typed."""
    fields = []
    for column in events_table.columns:
        kind = column.type
        if column.name in JSON_COLUMNS:
            arrow = _json_type(column.name)
        elif isinstance(kind, UTCDateTime):
            arrow = pa.timestamp("us", tz="UTC")
        elif isinstance(kind, sa.Integer):
            arrow = pa.int64()
        elif isinstance(kind, sa.Float):
            arrow = pa.float64()
        else:
            arrow = pa.string()
        fields.append(pa.field(column.name, arrow, nullable=column.nullable))
    return pa.schema(fields)


def parquet_bytes(queries: Queries, f: EventFilter, limit: int) -> bytes:
    """A Parquet file of at most ``limit`` events matching ``f``, newest first."""
    schema = arrow_schema()
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, schema) as writer:
        for frame in queries.export_frames(f, limit):
            for column in JSON_COLUMNS:
                if pa.types.is_string(schema.field(column).type):
                    frame[column] = [None if v is None else json.dumps(v) for v in frame[column]]
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    return buffer.getvalue()
