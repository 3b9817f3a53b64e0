"""The pandas read API of the analyst store: what analysts and dashboards call.

Both functions take an open :class:`~pipeline.store.writes.Store` or a URL (opened
and closed for the call) and return DataFrames with timezone-aware UTC times
and JSON columns as Python lists and dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.engine import describe
from pipeline.store.tables import dead_letters_table, events_table
from pipeline.store.writes import Store, open_store


def _with_store(store_or_url: Store | str) -> tuple[Store, bool]:
    """Return the store to read, and whether this call opened it (so must close it)."""
    if isinstance(store_or_url, Store):
        return store_or_url, False
    return open_store(store_or_url, migrate=False), True  # reads run no DDL


def _read(
    store_or_url: Store | str, stmt: sa.Select[Any], time_columns: Sequence[str]
) -> pd.DataFrame:
    store, owned = _with_store(store_or_url)
    try:
        with store.engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except SQLAlchemyError as exc:
        msg = f"could not read store {store.url}: {describe(exc)}"
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


def read_dead_letters(
    store_or_url: Store | str,
    limit: int | None = None,
    *,
    reasons: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    topic: str | None = None,
    replayed: bool | None = None,
    oldest_first: bool = False,
) -> pd.DataFrame:
    """Return stored dead letters as a DataFrame, most recently received first.

    Filters: ``reasons`` (any of them), ``received_time`` from ``since`` (inclusive)
    until ``until`` (exclusive, both timezone-aware), source ``topic``, and
    ``replayed`` (``True``: only those replayed, ``False``: only those not yet).
    ``oldest_first`` reverses the order (what a replay sends first), ``limit`` then
    keeps the first rows.  ``raw`` and ``key`` are ``bytes`` or ``None``; ``headers``
    a tuple of ``(name, bytes)`` pairs, ``None`` for rows stored before schema
    version 2; the times are timezone-aware UTC (``NaT`` when unknown).
    """
    table = dead_letters_table
    stmt = sa.select(table)
    if reasons is not None:
        stmt = stmt.where(table.c.reason.in_(list(reasons)))
    if since is not None:
        stmt = stmt.where(table.c.received_time >= since)
    if until is not None:
        stmt = stmt.where(table.c.received_time < until)
    if topic is not None:
        stmt = stmt.where(table.c.source_topic == topic)
    if replayed is not None:
        done = table.c.replayed_time.is_not(None)
        stmt = stmt.where(done if replayed else sa.not_(done))
    if oldest_first:
        stmt = stmt.order_by(table.c.received_time.asc(), table.c.id.asc())
    else:
        stmt = stmt.order_by(table.c.received_time.desc(), table.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return _read(store_or_url, stmt, ("received_time", "source_timestamp", "replayed_time"))
