"""The alert evaluator's progress and detector state, kept so a new leader goes on where it stopped.

Two tables: ``alert_progress`` (one row per stream: the last evaluated bucket, the watermark,
each source partition's newest event time, the open episodes' notification state) and
``alert_scope_state`` (one row per scope: its detectors' state as JSON).  A save replaces a
stream's rows in one transaction, so a reader (a restarted or second evaluator) sees either
the state before a step or after it, never half of one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.store.engine import store_errors
from pipeline.store.tables import UTCDateTime, metadata

progress_table = sa.Table(
    "alert_progress",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("evaluated", UTCDateTime),
    sa.Column("watermark", UTCDateTime),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_time", UTCDateTime, nullable=False),
)
scope_state_table = sa.Table(
    "alert_scope_state",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("scope_kind", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
)


class StreamState:
    """A stream's saved progress: ``evaluated`` (last bucket start), ``watermark``, JSON extras."""

    def __init__(
        self,
        evaluated: datetime | None,
        watermark: datetime | None,
        extra: dict[str, Any],
        scopes: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        self.evaluated = evaluated
        self.watermark = watermark
        self.extra = extra
        #: (scope_kind, scope) -> that scope's detector state.
        self.scopes = scopes


class AlertStateTable:
    """Reads and replaces the evaluator's saved state (``attnwatch migrate`` creates the tables)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load(self, stream: str) -> StreamState | None:
        """The saved state of ``stream``, or ``None`` if it was never saved."""
        p, s = progress_table, scope_state_table
        with store_errors("reading alert state"), self._engine.connect() as conn:
            row = conn.execute(sa.select(p).where(p.c.stream == stream)).first()
            if row is None:
                return None
            scopes = {
                (r.scope_kind, r.scope): json.loads(r.state)
                for r in conn.execute(sa.select(s).where(s.c.stream == stream))
            }
        return StreamState(row.evaluated, row.watermark, json.loads(row.state), scopes)

    def save(
        self,
        stream: str,
        evaluated: datetime | None,
        watermark: datetime | None,
        extra: Mapping[str, Any],
        scopes: Mapping[tuple[str, str], Mapping[str, Any]],
        now: datetime,
    ) -> None:
        """Replace ``stream``'s progress and scope states in one transaction."""
        p, s = progress_table, scope_state_table
        values = {
            "evaluated": evaluated,
            "watermark": watermark,
            "state": json.dumps(extra),
            "updated_time": now,
        }
        with store_errors("saving alert state"), self._engine.begin() as conn:
            # Delete then insert: portable (no dialect-specific upsert) and atomic in the
            # transaction; a stream has tens to hundreds of scopes.
            conn.execute(sa.delete(p).where(p.c.stream == stream))
            conn.execute(sa.insert(p).values(stream=stream, **values))
            conn.execute(sa.delete(s).where(s.c.stream == stream))
            if scopes:
                conn.execute(
                    sa.insert(s),
                    [
                        {"stream": stream, "scope_kind": k, "scope": v, "state": json.dumps(st)}
                        for (k, v), st in scopes.items()
                    ],
                )
