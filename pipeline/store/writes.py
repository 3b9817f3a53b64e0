"""The analyst store: enriched events and dead letters in SQLite or PostgreSQL.

One code path serves both back ends (SQLAlchemy Core, psycopg 3 for
PostgreSQL), so a laptop demo on a SQLite file and a shared PostgreSQL server
behave the same.  Writes are idempotent: events are keyed by ``input_id`` and
dead letters by their Kafka position, and duplicates are silently ignored, so
a batch redelivered after a crash between flush and offset commit (see
:mod:`pipeline.stream.checkpoint`) never creates duplicate rows.

Timestamps are stored and returned as timezone-aware UTC on both back ends;
JSON-valued fields (tickers, runners-up, attention) are stored as JSON text so
the same ``LIKE`` filter works everywhere and read back as Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.schema import ENRICHED_SCHEMA_VERSION, DeadLetter, EnrichedEvent
from pipeline.store.engine import create_engine, describe, normalise_url
from pipeline.store.tables import (
    DEAD_LETTER_KEY,
    dead_letter_row,
    dead_letters_table,
    event_row,
    events_table,
    metadata,
    store_meta_table,
)

# Any fixed number: serialises concurrent "create tables" runs on one server.
_PG_SCHEMA_LOCK_ID = 0x61747477


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
            msg = f"could not write to store {self.url}: {describe(exc)}"
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
            msg = f"could not read store {self.url}: {describe(exc)}"
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
    parsed = normalise_url(url)
    masked = parsed.render_as_string(hide_password=True)
    try:
        engine = create_engine(parsed)
    except (SQLAlchemyError, OSError) as exc:
        msg = f"could not open store {masked}: {describe(exc)}"
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
        msg = f"could not open store {masked}: {describe(exc)}"
        raise StoreError(msg) from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)
