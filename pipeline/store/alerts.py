"""The ``alerts`` table: one row per episode, firing then resolved.

The row's id is derived from the scope and the episode's start, and inserted with
insert-or-ignore, so a second evaluator (or the same one after a restart) cannot fire the same
episode twice; the open rows are how a restarted evaluator knows which episodes are open.
The full alert event (evidence included) is kept as JSON in ``payload``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.engine import create_tables, describe
from pipeline.store.tables import UTCDateTime

_metadata = sa.MetaData()
alerts_table = sa.Table(
    "alerts",
    _metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("scope_kind", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime),
    sa.Column("statistic", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_time", UTCDateTime, nullable=False),
    sa.Index("ix_alerts_status", "status"),
    sa.Index("ix_alerts_starts_at", "starts_at"),
)


class AlertTable:
    """Reads and writes the ``alerts`` table (created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        try:
            create_tables(engine, _metadata)
        except SQLAlchemyError as exc:
            msg = f"alerts table: {describe(exc)}"
            raise StoreError(msg) from exc

    def fire(self, row: dict[str, Any], now: datetime) -> bool:
        """Insert a firing episode; False if that episode was already recorded."""
        values = {**row, "status": "firing", "updated_time": now}
        insert = (
            pg_dialect.insert(alerts_table)
            if self._engine.dialect.name == "postgresql"
            else sqlite_dialect.insert(alerts_table)
        ).on_conflict_do_nothing(index_elements=["alert_id"])
        try:
            with self._engine.begin() as conn:
                return bool(conn.execute(insert.values(**values)).rowcount)
        except SQLAlchemyError as exc:
            msg = f"recording alert: {describe(exc)}"
            raise StoreError(msg) from exc

    def resolve(self, alert_id: str, ends_at: datetime, payload: str, now: datetime) -> bool:
        """Mark a firing episode resolved; False if it was not firing."""
        table = alerts_table
        try:
            with self._engine.begin() as conn:
                done = conn.execute(
                    sa.update(table)
                    .where(table.c.alert_id == alert_id)
                    .where(table.c.status == "firing")
                    .values(status="resolved", ends_at=ends_at, payload=payload, updated_time=now)
                ).rowcount
            return bool(done)
        except SQLAlchemyError as exc:
            msg = f"resolving alert: {describe(exc)}"
            raise StoreError(msg) from exc

    def rows(
        self, *, status: str | None = None, since: datetime | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Alerts, newest first, with ``payload`` parsed."""
        table = alerts_table
        stmt = sa.select(table).order_by(table.c.starts_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(table.c.status == status)
        if since is not None:
            stmt = stmt.where(table.c.updated_time >= since)
        try:
            with self._engine.connect() as conn:
                found = [dict(r._mapping) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            msg = f"reading alerts: {describe(exc)}"
            raise StoreError(msg) from exc
        for row in found:
            row["payload"] = json.loads(row["payload"])
        return found
