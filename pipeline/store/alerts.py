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
from sqlalchemy.engine import Engine

from pipeline.store.engine import insert_ignore, store_errors
from pipeline.store.tables import UTCDateTime, metadata

alerts_table = sa.Table(
    "alerts",
    metadata,
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
    """Reads and writes the ``alerts`` table (``attnwatch migrate`` creates it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def fire(self, row: dict[str, Any], now: datetime) -> bool:
        """Insert a firing episode; False if that episode was already recorded."""
        values = {**row, "status": "firing", "updated_time": now}
        insert = insert_ignore(alerts_table, self._engine.dialect, ["alert_id"])
        with store_errors("recording alert"), self._engine.begin() as conn:
            return bool(conn.execute(insert.values(**values)).rowcount)

    def resolve(self, alert_id: str, ends_at: datetime, payload: str, now: datetime) -> bool:
        """Mark a firing episode resolved; False if it was not firing."""
        table = alerts_table
        with store_errors("resolving alert"), self._engine.begin() as conn:
            done = conn.execute(
                sa.update(table)
                .where(table.c.alert_id == alert_id)
                .where(table.c.status == "firing")
                .values(status="resolved", ends_at=ends_at, payload=payload, updated_time=now)
            ).rowcount
        return bool(done)

    def get(self, alert_id: str) -> dict[str, Any] | None:
        """One alert by id, with ``payload`` parsed; ``None`` if there is none."""
        table = alerts_table
        with store_errors("reading alert"), self._engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.alert_id == alert_id)).first()
        if row is None:
            return None
        found = dict(row._mapping)
        found["payload"] = json.loads(found["payload"])
        return found

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
        with store_errors("reading alerts"), self._engine.connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(stmt)]
        for row in found:
            row["payload"] = json.loads(row["payload"])
        return found
