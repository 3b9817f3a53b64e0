"""The analyst store: enriched events and dead letters in SQLite or PostgreSQL.

One code path serves both back ends (SQLAlchemy Core, psycopg 3 for
PostgreSQL), so a laptop demo on a SQLite file and a shared PostgreSQL server
behave the same.  Writes are idempotent: events are keyed by ``input_id`` and
dead letters by their Kafka position, and duplicates are silently ignored, so
a batch redelivered after a crash between flush and offset commit (see
:mod:`pipeline.stream.checkpoint`) never creates duplicate rows.

Opening a store written by an older attnwatch migrates it (adds the columns its
version lacks) inside the same locked transaction that creates missing tables, so
concurrent openers never race; a store written by a newer attnwatch is refused.

Timestamps are stored and returned as timezone-aware UTC on both back ends;
JSON-valued fields (tickers, runners-up, attention) are stored as JSON text so
the same ``LIKE`` filter works everywhere and read back as Python objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateColumn

from pipeline.errors import StoreError
from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.store.engine import create_engine, describe, insert_ignore, normalise_url
from pipeline.store.tables import (
    ADDED_COLUMNS,
    DEAD_LETTER_KEY,
    STORE_SCHEMA_VERSION,
    dead_letter_row,
    dead_letters_table,
    event_row,
    events_table,
    metadata,
    store_meta_table,
)

# Any fixed number: serialises concurrent "create tables" runs on one server.
_PG_SCHEMA_LOCK_ID = 0x61747477
# Ids per UPDATE in mark_replayed (SQLite allows 32,766 bound parameters).
_MARK_CHUNK = 1000


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
    if version is not None and version > STORE_SCHEMA_VERSION:
        msg = (
            f"store {url} has schema version {version}, newer than this attnwatch's "
            f"{STORE_SCHEMA_VERSION}; upgrade attnwatch to use it"
        )
        raise StoreError(msg)


def _migrate(conn: Connection, version: int) -> None:
    """Add the columns that versions after ``version`` introduced and the store lacks.

    Only nullable columns are ever added, so old rows stay valid (their new fields
    are NULL: unknown).  Columns already there are skipped, so running it twice is
    harmless.  SQLAlchemy Core has no "add column" construct (Alembic's ``op`` does,
    a dependency for four statements); ``CreateColumn`` renders the column as
    ``CREATE TABLE`` would, quoting and types included.
    """
    for added_in, columns in sorted(ADDED_COLUMNS.items()):
        if added_in <= version:
            continue
        for table_name, name in columns:
            table = metadata.tables[table_name]
            existing = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
            if name in existing:
                continue
            spec = CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            quoted = conn.dialect.identifier_preparer.format_table(table)
            conn.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {spec}")


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
                    stmt = insert_ignore(events_table, dialect, ["input_id"])
                    result = conn.execute(stmt.returning(events_table.c.input_id), event_rows)
                    new = len(result.all())
                if letter_rows:
                    stmt = insert_ignore(dead_letters_table, dialect, DEAD_LETTER_KEY)
                    conn.execute(stmt, letter_rows)
        except SQLAlchemyError as exc:
            msg = f"could not write to store {self.url}: {describe(exc)}"
            raise StoreError(msg) from exc
        return new

    def mark_replayed(self, ids: Iterable[int], when: datetime) -> int:
        """Set ``replayed_time`` of the dead letters with these ``id`` values to ``when``.

        ``when`` must be timezone-aware.  Returns how many rows were updated (unknown
        ids are ignored).  Raises :class:`StoreError` if the store cannot be written.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        table = dead_letters_table
        updated = 0
        try:
            with self._engine.begin() as conn:
                # Chunks keep each statement under SQLite's bound-parameter limit.
                for start in range(0, len(wanted), _MARK_CHUNK):
                    chunk = wanted[start : start + _MARK_CHUNK]
                    result = conn.execute(
                        sa.update(table).where(table.c.id.in_(chunk)).values(replayed_time=when)
                    )
                    updated += result.rowcount
        except SQLAlchemyError as exc:
            msg = f"could not write to store {self.url}: {describe(exc)}"
            raise StoreError(msg) from exc
        return updated

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


def _record_schema_version(conn: Connection) -> None:
    value = str(STORE_SCHEMA_VERSION)
    table = store_meta_table
    row = {"key": "schema_version", "value": value}
    if conn.dialect.name == "postgresql":
        pg_stmt = pg_dialect.insert(table).values(row)
        conn.execute(pg_stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
    else:
        lite_stmt = sqlite_dialect.insert(table).values(row)
        conn.execute(lite_stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def open_store(url: str) -> Store:
    """Open (creating tables if missing) the store at ``url``.

    ``url`` is ``sqlite:///PATH.db`` (the parent directory is created) or
    ``postgresql://...`` (run with psycopg 3).  A store of an older schema version is
    migrated (see :data:`~pipeline.store.tables.STORE_SCHEMA_VERSION`).  Raises
    :class:`StoreError` for a bad URL, an unreachable database, or a store written by
    a newer attnwatch.
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
            else:
                # Python's sqlite3 starts a transaction only before INSERT/UPDATE/DELETE, so
                # DDL would autocommit statement by statement; BEGIN IMMEDIATE takes the
                # write lock now and makes create + migrate one transaction.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            # Check before creating anything: a newer store may have a different layout.
            version: int | None = None
            if sa.inspect(conn).has_table(store_meta_table.name):
                version = _stored_schema_version(conn, masked)
                _check_schema_version(version, masked)
            metadata.create_all(conn)
            if version != STORE_SCHEMA_VERSION:
                # No version at all: tables from a version-1 run that died before
                # recording it (its DDL was not transactional on SQLite) may be there.
                _migrate(conn, version or 1)
            _record_schema_version(conn)
    except SQLAlchemyError as exc:
        engine.dispose()
        msg = f"could not open store {masked}: {describe(exc)}"
        raise StoreError(msg) from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)
