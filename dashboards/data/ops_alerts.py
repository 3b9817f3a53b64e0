"""Operational alerts Alertmanager sent the dashboard: the ``ops_alerts`` table and its reads.

Prometheus evaluates ``deploy/prometheus/alerts.yml``; Alertmanager POSTs each notification
to ``/hooks/alertmanager`` (:mod:`dashboards.web.hooks`), whose alerts land here, one row
per alert: its ``fingerprint`` (a hash of its labels) and ``startsAt`` together.
Alertmanager re-sends a firing alert every ``repeat_interval`` and sends it once more
when it resolves, so a notification is an upsert on that pair: the newest notification
sets the row's status, end, labels and annotations.  Last write wins because
Alertmanager itself decides what is current: an alert that fires again after it was
resolved (Prometheus restored its ``for`` state after ``resolve_timeout``) keeps its
``startsAt`` and must show as firing again.

The table sits in the analyst store beside ``corrections`` (both defined in
:mod:`pipeline.store.dashboard_tables`, created by ``attnwatch migrate``), so every
replica and every restart sees the same alerts.  Rows are small: labels and annotations as
JSON text, each value cut to
:data:`MAX_VALUE_CHARS` (these alerts carry no message text).  After each notification
the table keeps at most :data:`MAX_ROWS` rows, in the same transaction: firing alerts
first, then resolved ones, each by the most recently notified; the rest are deleted.  A
count rather than an age, so the table stays small however noisy the rules get, and no
purge job has to know about it (``pipeline`` never imports ``dashboards``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.alerting.payloads import AlertmanagerAlert, AlertmanagerWebhook
from pipeline.store.dashboard_tables import ops_alerts_table
from pipeline.store.engine import insert_on_conflict, store_errors

#: Rows kept after each notification (firing ones first, then the newest resolved).
MAX_ROWS = 1_000
#: Longest label or annotation value stored; longer ones are cut and end in "…".
MAX_VALUE_CHARS = 2_000
#: How a page orders severities (unknown ones after these).
SEVERITY_ORDER = ("critical", "error", "warning", "info")

#: Columns a later notification of the same alert overwrites.
_UPDATED = (
    "status",
    "ends_at",
    "alertname",
    "severity",
    "labels",
    "annotations",
    "generator_url",
    "receiver",
    "last_received",
)


@dataclass(frozen=True)
class OpsAlert:
    """One Alertmanager alert as last notified."""

    fingerprint: str
    starts_at: datetime
    status: str
    ends_at: datetime | None
    alertname: str
    severity: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    generator_url: str = ""
    first_received: datetime | None = None
    last_received: datetime | None = None

    @property
    def summary(self) -> str:
        """The ``summary`` annotation (``description`` when there is none)."""
        return self.annotations.get("summary") or self.annotations.get("description", "")

    @property
    def runbook_url(self) -> str | None:
        """The ``runbook_url`` annotation if it is an http(s) link, else ``None``."""
        return web_link(self.annotations.get("runbook_url", ""))

    @property
    def source_url(self) -> str | None:
        """Prometheus' ``generatorURL`` if it is an http(s) link, else ``None``."""
        return web_link(self.generator_url)


def web_link(url: str) -> str | None:
    """``url`` if it is an absolute http(s) URL, so a page never links ``javascript:``."""
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _cut(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


def _json(values: Mapping[str, str]) -> str:
    return json.dumps({k: _cut(v) for k, v in sorted(values.items())}, ensure_ascii=False)


def _row(alert: AlertmanagerAlert, receiver: str, now: datetime) -> dict[str, Any]:
    resolved = alert.status == "resolved"
    return {
        "fingerprint": alert.fingerprint,
        "starts_at": alert.startsAt,
        "status": alert.status,
        "ends_at": alert.endsAt if resolved and alert.endsAt >= alert.startsAt else None,
        "alertname": _cut(alert.labels.get("alertname", "")),
        "severity": _cut(alert.labels.get("severity", "")),
        "labels": _json(alert.labels),
        "annotations": _json(alert.annotations),
        "generator_url": _cut(alert.generatorURL),
        "receiver": _cut(receiver),
        "first_received": now,
        "last_received": now,
    }


def _alert(row: sa.Row[Any]) -> OpsAlert:
    m = row._mapping
    return OpsAlert(
        fingerprint=str(m["fingerprint"]),
        starts_at=m["starts_at"],
        status=str(m["status"]),
        ends_at=m["ends_at"],
        alertname=str(m["alertname"]),
        severity=str(m["severity"]),
        labels=_parse(m["labels"]),
        annotations=_parse(m["annotations"]),
        generator_url=str(m["generator_url"]),
        first_received=m["first_received"],
        last_received=m["last_received"],
    )


def _parse(text: object) -> dict[str, str]:
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


class OpsAlertTable:
    """Reads and writes the ``ops_alerts`` table (``attnwatch migrate`` creates it)."""

    def __init__(self, engine: Engine, max_rows: int = MAX_ROWS) -> None:
        if max_rows < 1:
            msg = f"max_rows must be at least 1, not {max_rows}"
            raise ValueError(msg)
        self._engine = engine
        self._max_rows = max_rows

    def record(self, notification: AlertmanagerWebhook, now: datetime) -> int:
        """Upsert every alert of a notification, then drop rows beyond the bound.

        Returns how many alerts the notification held.  One transaction: a replica that
        fails halfway stores nothing, and Alertmanager's retry stores it all.
        """
        rows = [_row(a, notification.receiver, now) for a in notification.alerts]
        with store_errors("recording Alertmanager alerts"), self._engine.begin() as conn:
            for row in rows:
                conn.execute(self._upsert(conn).values(**row))
            self._prune(conn)
        return len(rows)

    def _upsert(self, conn: Connection) -> sa.Insert:
        key = ["fingerprint", "starts_at"]
        return insert_on_conflict(ops_alerts_table, conn.dialect, key, update=_UPDATED)

    def _prune(self, conn: Connection) -> None:
        table = ops_alerts_table
        surplus = (
            sa.select(table.c.id)
            .order_by(
                sa.case((table.c.status == "firing", 0), else_=1),
                table.c.last_received.desc(),
                table.c.id.desc(),
            )
            .offset(self._max_rows)
        )
        ids = list(conn.execute(surplus).scalars())
        if ids:
            conn.execute(sa.delete(table).where(table.c.id.in_(ids)))

    def firing(self, limit: int) -> list[OpsAlert]:
        """Firing alerts, most severe first, then the newest first."""
        table = ops_alerts_table
        stmt = sa.select(table).where(table.c.status == "firing")
        with store_errors("reading Alertmanager alerts"), self._engine.connect() as conn:
            found = [_alert(r) for r in conn.execute(stmt)]
        found.sort(key=lambda a: a.starts_at, reverse=True)
        found.sort(key=lambda a: _severity_rank(a.severity))
        return found[:limit]

    def resolved(self, limit: int) -> list[OpsAlert]:
        """Resolved alerts, the latest to end first."""
        table = ops_alerts_table
        stmt = (
            sa.select(table)
            .where(table.c.status == "resolved")
            .order_by(table.c.ends_at.desc().nulls_last(), table.c.id.desc())
            .limit(limit)
        )
        with store_errors("reading Alertmanager alerts"), self._engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def count(self) -> int:
        """How many rows the table holds."""
        with store_errors("reading Alertmanager alerts"), self._engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(ops_alerts_table)
            return int(conn.execute(stmt).scalar_one())
