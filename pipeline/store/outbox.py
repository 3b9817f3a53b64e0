"""The notification outbox: alert payloads waiting to be POSTed, durable until delivered.

The evaluator only inserts a row per (alert, status, receiver) here, in the store it
already writes; a background worker claims due rows, POSTs them and marks each one
delivered or failed.  A failed row is retried with capped exponential backoff and is
never dropped, so a receiver that is down for a day still gets every alert, and a
restarted process finds what was pending.  A claim is a lease (the row's next attempt
is pushed past the POST's timeout), so two workers over one store do not send a row
at the same time; a worker killed mid-POST leaves the row due again when the lease
ends (at-least-once delivery: receivers dedupe on the payload's fingerprint).

The table is part of the one store schema (:mod:`pipeline.store.schema`), created and
migrated by ``attnwatch migrate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.backoff import capped_exponential_s
from pipeline.store.engine import insert_ignore, store_errors
from pipeline.store.tables import JSONText, UTCDateTime, metadata

#: First retry delay after a failure, in seconds; it doubles with every further failure.
BASE_BACKOFF_S = 1.0
#: Longest kept part of a delivery error.
MAX_ERROR_CHARS = 500
_KEY = ("alert_id", "status", "receiver")

outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.UniqueConstraint(*_KEY, name="outbox_alert_status_receiver"),
    sa.Index("outbox_due", "receiver", "delivered_at", "next_attempt_at"),
)


@dataclass(frozen=True)
class Message:
    """One payload to deliver to one receiver; (alert_id, status, receiver) is its key."""

    alert_id: str
    status: str
    receiver: str
    payload: Any


@dataclass(frozen=True)
class OutboxRow:
    """A row of the outbox as stored."""

    id: int
    alert_id: str
    status: str
    receiver: str
    payload: Any
    created: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def backoff_s(failures: int, max_backoff_s: float, base_s: float = BASE_BACKOFF_S) -> float:
    """Delay before the next attempt after ``failures`` failed ones: base, 2x, 4x, ... capped."""
    return capped_exponential_s(failures, base_s, max_backoff_s)


class Outbox:
    """Notifications waiting for delivery, in the analyst store's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def enqueue(self, messages: Sequence[Message], now: datetime | None = None) -> int:
        """Queue messages for delivery now; return how many were new.

        Idempotent on (alert_id, status, receiver): a message already queued (delivered
        or not) is left as it is, so an evaluator that re-emits an alert after a restart
        does not notify twice.  One transaction for all of them.
        """
        if not messages:
            return 0
        now = now or datetime.now(UTC)
        insert = insert_ignore(outbox_table, self._engine.dialect, _KEY)
        added = 0
        with store_errors("notification outbox"), self._engine.begin() as conn:
            for message in messages:
                result = conn.execute(
                    insert.values(
                        alert_id=message.alert_id,
                        status=message.status,
                        receiver=message.receiver,
                        payload=message.payload,
                        created=now,
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                added += max(result.rowcount, 0)
        return added

    def claim(
        self, receiver: str, limit: int, lease_s: float, now: datetime | None = None
    ) -> list[OutboxRow]:
        """Undelivered rows of ``receiver`` that are due, oldest first, leased for ``lease_s``.

        A claimed row is not due again until the lease ends; :meth:`mark_delivered` or
        :meth:`mark_failed` settles it before that.  A row another worker claimed between
        the read and the update is left to that worker.
        """
        now = now or datetime.now(UTC)
        lease_until = now + timedelta(seconds=lease_s)
        table = outbox_table
        claimed: list[OutboxRow] = []
        with store_errors("notification outbox"), self._engine.begin() as conn:
            due = conn.execute(
                sa.select(table)
                .where(
                    table.c.receiver == receiver,
                    table.c.delivered_at.is_(None),
                    table.c.next_attempt_at <= now,
                )
                .order_by(table.c.next_attempt_at, table.c.id)
                .limit(limit)
            ).all()
            for found in due:
                row = _row(found._mapping)
                taken = conn.execute(
                    sa.update(table)
                    .where(
                        table.c.id == row.id,
                        table.c.delivered_at.is_(None),
                        table.c.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=lease_until)
                )
                if taken.rowcount == 1:
                    claimed.append(row)
        return claimed

    def release(self, receiver: str, now: datetime | None = None) -> int:
        """Make every undelivered row of ``receiver`` due now; return how many were held.

        For a worker that takes over from one that is gone: rows the old worker claimed
        (and was killed before settling) would otherwise wait out their lease, and a
        short-lived successor (``run --idle-exit``) would exit without them.  Failed rows
        lose their backoff too; a new owner tries once at once.
        """
        now = now or datetime.now(UTC)
        table = outbox_table
        with store_errors("notification outbox"), self._engine.begin() as conn:
            result = conn.execute(
                sa.update(table)
                .where(
                    table.c.receiver == receiver,
                    table.c.delivered_at.is_(None),
                    table.c.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )
        return int(result.rowcount or 0)

    def mark_delivered(self, row_id: int, now: datetime | None = None) -> None:
        """Record a successful delivery (one more attempt); a delivered row is never sent again."""
        now = now or datetime.now(UTC)
        table = outbox_table
        with store_errors("notification outbox"), self._engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == row_id, table.c.delivered_at.is_(None))
                .values(delivered_at=now, attempts=table.c.attempts + 1, last_error=None)
            )

    def mark_failed(
        self,
        row_id: int,
        error: str,
        max_backoff_s: float,
        now: datetime | None = None,
        base_backoff_s: float = BASE_BACKOFF_S,
    ) -> datetime | None:
        """Record a failed attempt and schedule the next; return when it is due.

        The delay doubles from ``base_backoff_s`` with each failure, up to ``max_backoff_s``;
        the row stays queued however often it fails.  ``None`` if the row is gone or was
        delivered meanwhile.
        """
        now = now or datetime.now(UTC)
        table = outbox_table
        with store_errors("notification outbox"), self._engine.begin() as conn:
            attempts = conn.execute(
                sa.select(table.c.attempts).where(
                    table.c.id == row_id, table.c.delivered_at.is_(None)
                )
            ).scalar_one_or_none()
            if attempts is None:
                return None
            failures = int(attempts) + 1
            due = now + timedelta(seconds=backoff_s(failures, max_backoff_s, base_backoff_s))
            conn.execute(
                sa.update(table)
                .where(table.c.id == row_id)
                .values(
                    attempts=failures,
                    next_attempt_at=due,
                    last_error=error[:MAX_ERROR_CHARS],
                )
            )
        return due

    def rows(self, *, undelivered_only: bool = False) -> list[OutboxRow]:
        """Every row (or every undelivered one), oldest first: for operators and tests."""
        table = outbox_table
        query = sa.select(table).order_by(table.c.id)
        if undelivered_only:
            query = query.where(table.c.delivered_at.is_(None))
        with store_errors("notification outbox"), self._engine.connect() as conn:
            return [_row(found._mapping) for found in conn.execute(query)]

    def purge_delivered(self, before: datetime) -> int:
        """Delete rows delivered before ``before``; return how many.

        Delivered rows are kept until then so a re-emitted alert stays deduplicated.
        """
        table = outbox_table
        with store_errors("notification outbox"), self._engine.begin() as conn:
            result = conn.execute(
                sa.delete(table).where(
                    table.c.delivered_at.is_not(None), table.c.delivered_at < before
                )
            )
        return max(result.rowcount, 0)


def _row(values: Any) -> OutboxRow:
    return OutboxRow(
        id=int(values["id"]),
        alert_id=values["alert_id"],
        status=values["status"],
        receiver=values["receiver"],
        payload=values["payload"],
        created=values["created"],
        attempts=int(values["attempts"]),
        next_attempt_at=values["next_attempt_at"],
        delivered_at=values["delivered_at"],
        last_error=values["last_error"],
    )
