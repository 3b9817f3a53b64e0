"""The analyst store: enriched events and dead letters in SQLite or PostgreSQL.

One code path serves both back ends (SQLAlchemy Core, psycopg 3 for
PostgreSQL), so a laptop demo on a SQLite file and a shared PostgreSQL server
behave the same.  Writes are idempotent: events are keyed by ``input_id`` and
dead letters by their Kafka position, and duplicates are silently ignored, so
a batch redelivered after a crash between flush and offset commit (see
:mod:`pipeline.checkpoint`) never creates duplicate rows.

Timestamps are stored and returned as timezone-aware UTC on both back ends;
JSON-valued fields (tickers, runners-up, attention) are stored as JSON text so
the same ``LIKE`` filter works everywhere and read back as Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pipeline.checkpoint import Record
from pipeline.errors import StoreError
from pipeline.schema import ENRICHED_SCHEMA_VERSION, DeadLetter, EnrichedEvent
from pipeline.store_tables import (
    DEAD_LETTER_KEY,
    dead_letter_row,
    dead_letters_table,
    event_row,
    events_table,
    metadata,
    store_meta_table,
)

#: How long a SQLite writer waits for another process's lock before failing, in ms.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: How long to wait for a PostgreSQL server to accept a connection, in seconds.
PG_CONNECT_TIMEOUT_S = 10
# Any fixed number: serialises concurrent "create tables" runs on one server.
_PG_SCHEMA_LOCK_ID = 0x61747477


def _describe(exc: BaseException) -> str:
    """Return the driver's own message, without SQLAlchemy's SQL echo and help link."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


def _normalise_url(url: str) -> URL:
    """Parse ``url``, pin PostgreSQL to psycopg 3 and refuse anything else."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        msg = f"invalid store URL {url!r}: expected sqlite:///PATH or postgresql://..."
        raise StoreError(msg) from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            msg = f"store driver {parsed.drivername!r} is not supported; use postgresql+psycopg"
            raise StoreError(msg)
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # Each pooled connection would get its own empty database.
            msg = "in-memory SQLite stores are not supported; give a file: sqlite:///PATH.db"
            raise StoreError(msg)
        return parsed
    msg = f"unsupported store URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
    raise StoreError(msg)


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    """Per-connection SQLite settings: WAL lets the dashboard read while the pipeline writes."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
        # Safe with WAL: a power cut may lose the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _create_engine(url: URL) -> Engine:
    # hide_parameters: customer text must not end up in logs via error messages.
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, hide_parameters=True)
        sa.event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    # pre_ping: a long-running pipeline outlives server restarts.
    return sa.create_engine(
        url, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args
    )


def _insert_ignore(table: sa.Table, dialect: Dialect, key: Sequence[str]) -> sa.Insert:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` in the engine's dialect."""
    if dialect.name == "postgresql":
        return pg_dialect.insert(table).on_conflict_do_nothing(index_elements=list(key))
    return sqlite_dialect.insert(table).on_conflict_do_nothing(index_elements=list(key))


def _stored_schema_version(conn: Connection, url: str) -> int | None:
    value = conn.execute(
        sa.select(store_meta_table.c.value).where(store_meta_table.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        msg = f"store {url} has an unreadable schema_version {value!r}"
        raise StoreError(msg) from exc


def _check_schema_version(version: int | None, url: str) -> None:
    if version is not None and version > ENRICHED_SCHEMA_VERSION:
        msg = (
            f"store {url} has schema version {version}, newer than this attnwatch's "
            f"{ENRICHED_SCHEMA_VERSION}; upgrade attnwatch to use it"
        )
        raise StoreError(msg)


class Store:
    """An open analyst store; create it with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for callers that need their own queries."""
        return self._engine

    @property
    def url(self) -> str:
        """The store URL with any password masked, safe to log."""
        return self._engine.url.render_as_string(hide_password=True)

    def write(self, events: Sequence[EnrichedEvent], dead_letters: Sequence[DeadLetter]) -> int:
        """Insert events and dead letters in one transaction; return how many events were new.

        Rows already present (same ``input_id``, or same topic/partition/offset for
        dead letters) are skipped, so writing a batch twice is harmless.  On any
        failure nothing of the batch is written and :class:`StoreError` is raised.
        """
        event_rows = [event_row(e) for e in events]
        letter_rows = [dead_letter_row(d) for d in dead_letters]
        if not event_rows and not letter_rows:
            return 0
        dialect = self._engine.dialect
        try:
            with self._engine.begin() as conn:
                new = 0
                if event_rows:
                    # RETURNING lists only the rows actually inserted, on both back ends;
                    # executemany rowcounts are not reliable across drivers.
                    stmt = _insert_ignore(events_table, dialect, ["input_id"])
                    result = conn.execute(stmt.returning(events_table.c.input_id), event_rows)
                    new = len(result.all())
                if letter_rows:
                    stmt = _insert_ignore(dead_letters_table, dialect, DEAD_LETTER_KEY)
                    conn.execute(stmt, letter_rows)
        except SQLAlchemyError as exc:
            msg = f"could not write to store {self.url}: {_describe(exc)}"
            raise StoreError(msg) from exc
        return new

    def count(self, kind: str | None = None) -> int:
        """Count stored events, optionally of one kind (``chat`` or ``news``)."""
        stmt = sa.select(sa.func.count()).select_from(events_table)
        if kind is not None:
            stmt = stmt.where(events_table.c.kind == kind)
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except SQLAlchemyError as exc:
            msg = f"could not read store {self.url}: {_describe(exc)}"
            raise StoreError(msg) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def open_store(url: str) -> Store:
    """Open (creating tables if missing) the store at ``url``.

    ``url`` is ``sqlite:///PATH.db`` (the parent directory is created) or
    ``postgresql://...`` (run with psycopg 3).  Raises :class:`StoreError` for a
    bad URL, an unreachable database, or a store written by a newer attnwatch.
    """
    parsed = _normalise_url(url)
    masked = parsed.render_as_string(hide_password=True)
    try:
        engine = _create_engine(parsed)
    except (SQLAlchemyError, OSError) as exc:
        msg = f"could not open store {masked}: {_describe(exc)}"
        raise StoreError(msg) from exc
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_ID)))
            # Check before creating anything: a newer store may have a different layout.
            if sa.inspect(conn).has_table(store_meta_table.name):
                _check_schema_version(_stored_schema_version(conn, masked), masked)
            metadata.create_all(conn)
            conn.execute(
                _insert_ignore(store_meta_table, engine.dialect, ["key"]).values(
                    key="schema_version", value=str(ENRICHED_SCHEMA_VERSION)
                )
            )
    except SQLAlchemyError as exc:
        engine.dispose()
        msg = f"could not open store {masked}: {_describe(exc)}"
        raise StoreError(msg) from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


class StoreSink:
    """The store as a checkpoint sink: buffers records, writes them in one transaction."""

    name = "store"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: list[EnrichedEvent] = []
        self._dead_letters: list[DeadLetter] = []

    @property
    def pending(self) -> int:
        """Records added since the last successful flush."""
        return len(self._events) + len(self._dead_letters)

    def add(self, record: Record) -> None:
        """Buffer an enriched event or a dead letter."""
        if isinstance(record, EnrichedEvent):
            self._events.append(record)
        elif isinstance(record, DeadLetter):
            self._dead_letters.append(record)

    def flush(self) -> None:
        """Write the buffer in one transaction; keep it if that fails so a retry loses nothing."""
        if not self.pending:
            return
        self._store.write(self._events, self._dead_letters)
        self._events = []
        self._dead_letters = []


def _with_store(store_or_url: Store | str) -> tuple[Store, bool]:
    """Return the store to read, and whether this call opened it (so must close it)."""
    if isinstance(store_or_url, Store):
        return store_or_url, False
    return open_store(store_or_url), True


def _read(
    store_or_url: Store | str, stmt: sa.Select[Any], time_columns: Sequence[str]
) -> pd.DataFrame:
    store, owned = _with_store(store_or_url)
    try:
        with store.engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except SQLAlchemyError as exc:
        msg = f"could not read store {store.url}: {_describe(exc)}"
        raise StoreError(msg) from exc
    finally:
        if owned:
            store.close()
    # Also types empty results, which would otherwise come back as object columns.
    for column in time_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def read_events(
    store_or_url: Store | str,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    intent: str | None = None,
    sentiment: str | None = None,
    ticker: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return stored events as a DataFrame, newest ``event_time`` first.

    ``since`` is inclusive and ``until`` exclusive (both timezone-aware);
    ``ticker`` matches events whose ``tickers`` list contains exactly that symbol.
    JSON columns hold Python lists/dicts; ``event_time`` and ``processed_time``
    are timezone-aware UTC.
    """
    table = events_table
    stmt = sa.select(table)
    if kind is not None:
        stmt = stmt.where(table.c.kind == kind)
    if since is not None:
        stmt = stmt.where(table.c.event_time >= since)
    if until is not None:
        stmt = stmt.where(table.c.event_time < until)
    if intent is not None:
        stmt = stmt.where(table.c.intent_label == intent)
    if sentiment is not None:
        stmt = stmt.where(table.c.sentiment_label == sentiment)
    if ticker is not None:
        # Match the quoted JSON string, so "AAPL" does not match "AAPLX"; compare as
        # text, or the pattern itself would be JSON-encoded on the way in.
        tickers_text = sa.type_coerce(table.c.tickers, sa.Text)
        stmt = stmt.where(tickers_text.contains(json.dumps(ticker), autoescape=True))
    stmt = stmt.order_by(table.c.event_time.desc(), table.c.input_id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return _read(store_or_url, stmt, ("event_time", "processed_time"))


def read_dead_letters(store_or_url: Store | str, limit: int | None = None) -> pd.DataFrame:
    """Return stored dead letters as a DataFrame, most recently received first."""
    table = dead_letters_table
    stmt = sa.select(table).order_by(table.c.received_time.desc(), table.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return _read(store_or_url, stmt, ("received_time",))
