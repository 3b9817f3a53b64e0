"""Retention: delete what is older than its period, or everything of one conversation.

:func:`purge` applies a :class:`Retention` (``attnwatch purge`` and, through
:func:`retention_worker`, every ``attnwatch run`` replica); :func:`forget_conversation`
deletes one customer's data (``attnwatch purge --conversation-id``).  Both cover every
table that holds conversation data, ``corrections`` included; a table missing from the
store (dropped by hand) is skipped.

Rows go in batches of at most ``batch_size`` per transaction, selected and then deleted by
primary key: a SQLite writer blocks every other writer for its whole transaction, and one
``DELETE`` of millions of rows would stall the run loop's writes for as long.  A purge
stopped halfway keeps what it deleted; the next one carries on.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import StoreError
from pipeline.store.alerts import alerts_table
from pipeline.store.attempts import attempts_table
from pipeline.store.dashboard_tables import corrections_table
from pipeline.store.engine import store_errors
from pipeline.store.outbox import outbox_table
from pipeline.store.tables import dead_letters_table, events_table

log = logging.getLogger(__name__)

#: Rows deleted per transaction.
BATCH_ROWS = 5_000
#: How often one alert's payload is re-read when the evaluator rewrites it mid-scrub.
_SCRUB_ATTEMPTS = 3


@dataclass(frozen=True)
class Retention:
    """How many days each kind of row is kept; ``0`` keeps it forever.

    ``events_days`` also bounds stale attempt counts; ``alerts_days`` counts from a
    resolved alert's end, and a firing alert is never deleted.
    """

    events_days: float
    dead_letters_days: float
    alerts_days: float

    def __post_init__(self) -> None:
        for name, days in asdict(self).items():
            if not (math.isfinite(days) and days >= 0):
                msg = f"{name} must be a finite number >= 0 (0 keeps forever), got {days}"
                raise ValueError(msg)

    @property
    def keeps_everything(self) -> bool:
        """True when every period is 0: a purge would delete nothing."""
        return not (self.events_days or self.dead_letters_days or self.alerts_days)


@dataclass(frozen=True)
class PurgeReport:
    """Rows deleted (or, in a dry run, that would be) per table.

    ``alert_evidence`` counts evidence entries removed from alert payloads, not rows.
    """

    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    outbox: int = 0
    attempts: int = 0
    alert_evidence: int = 0
    corrections: int = 0

    def counts(self) -> dict[str, int]:
        """The counts by name, in a stable order (for logs and the CLI)."""
        return asdict(self)

    @property
    def total(self) -> int:
        """All counts added up."""
        return sum(self.counts().values())


def cutoff(days: float, now: datetime) -> datetime | None:
    """``now`` minus ``days``; ``None`` for 0 (keep forever) or a period beyond the calendar."""
    if now.tzinfo is None or now.utcoffset() is None:
        msg = f"naive datetime {now.isoformat()} given; retention needs a timezone-aware now"
        raise ValueError(msg)
    if days <= 0:
        return None
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return None  # before year 1: nothing can be that old


def purge(
    engine: Engine,
    retention: Retention,
    now: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_ROWS,
    stop: threading.Event | None = None,
) -> PurgeReport:
    """Delete the rows older than ``retention`` allows at ``now``; return how many per table.

    - ``events`` by ``event_time`` (when it happened: the customer's message time);
    - ``dead_letters`` by ``received_time``: set by the pipeline for every row, where the
      input's ``source_timestamp`` is the producer's clock and empty for old rows;
    - ``alerts`` only when resolved, by ``ends_at``, with their ``outbox`` rows;
    - ``attempts`` (redelivery counts) by ``updated_time``, past the events' period;
    - ``corrections`` (analysts' relabellings) of events that are gone or go now.

    ``dry_run`` counts without deleting.  ``stop``, when set, ends the purge after the
    current batch (the report then counts what was done).  Raises :class:`StoreError`.
    """
    check_batch(batch_size)
    events_cut = cutoff(retention.events_days, now)
    letters_cut = cutoff(retention.dead_letters_days, now)
    alerts_cut = cutoff(retention.alerts_days, now)
    run = _Batches(engine, batch_size, dry_run, stop)
    counts: dict[str, int] = {}
    with store_errors("purging the store"):
        present = _present(engine)
        if events_cut is not None and events_table.name in present:
            if corrections_table.name in present:
                # First, while the events still say which go (a dry run deletes none).
                kept = events_table.c.event_time >= events_cut
                counts["corrections"] = run.delete(corrections_table, ~_has_event(kept))
            table = events_table
            counts["events"] = run.delete(table, table.c.event_time < events_cut)
        if letters_cut is not None and dead_letters_table.name in present:
            table = dead_letters_table
            counts["dead_letters"] = run.delete(table, table.c.received_time < letters_cut)
        if alerts_cut is not None and alerts_table.name in present:
            table = alerts_table
            old = sa.and_(
                table.c.status == "resolved",
                table.c.ends_at.is_not(None),
                table.c.ends_at < alerts_cut,
            )
            with_outbox = outbox_table.name in present
            counts["alerts"], counts["outbox"] = run.delete_alerts(old, with_outbox)
        if events_cut is not None and attempts_table.name in present:
            table = attempts_table
            counts["attempts"] = run.delete(table, table.c.updated_time < events_cut)
    return PurgeReport(**counts)


def forget_conversation(
    engine: Engine,
    conversation_id: str,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_ROWS,
) -> PurgeReport:
    """Delete one conversation's data, whatever its age; return how much per table.

    - its ``events`` (``conversation_id``);
    - ``dead_letters`` whose Kafka key is the conversation id (chats are keyed by it) or
      whose stored value names it as ``"conversation_id": "<id>"`` (also in broken JSON);
    - ``corrections`` of its events (who relabelled them, and to what);
    - alert ``evidence`` entries whose excerpt is the start of one of its messages' text
      (excerpts are prefixes of the stored text; an identical text from another
      conversation is removed too, erring on the side of deletion).  The alert stays.

    Evidence is matched against the stored events, so the events are deleted last: a
    run that fails halfway can simply be repeated.  Evidence quoting messages whose
    events were already purged by retention cannot be matched.  Outbox payloads carry no
    excerpts and attempt counts no content, so neither is touched.  Raises
    :class:`StoreError`; ``ValueError`` for an empty id.
    """
    if not conversation_id:
        msg = "conversation_id must not be empty"
        raise ValueError(msg)
    check_batch(batch_size)
    run = _Batches(engine, batch_size, dry_run, None)
    counts: dict[str, int] = {}
    with store_errors("forgetting a conversation"):
        present = _present(engine)
        if events_table.name not in present:
            texts: list[str] = []
        else:
            with engine.connect() as conn:
                texts = list(
                    conn.execute(
                        sa.select(events_table.c.text).where(
                            events_table.c.conversation_id == conversation_id
                        )
                    ).scalars()
                )
        if texts and alerts_table.name in present:
            counts["alert_evidence"] = _scrub_evidence(engine, texts, batch_size, dry_run)
        if dead_letters_table.name in present:
            counts["dead_letters"] = _forget_dead_letters(run, conversation_id)
        if events_table.name in present:
            if corrections_table.name in present:
                theirs = _has_event(events_table.c.conversation_id == conversation_id)
                counts["corrections"] = run.delete(corrections_table, theirs)
            table = events_table
            counts["events"] = run.delete(table, table.c.conversation_id == conversation_id)
    return PurgeReport(**counts)


def _has_event(where: sa.ColumnElement[bool]) -> sa.Exists:
    """Whether a correction's event is among the events matching ``where``."""
    return sa.exists().where(events_table.c.input_id == corrections_table.c.input_id, where)


class _Batches:
    """Batched deletes (or counts, in a dry run) over one engine."""

    def __init__(
        self, engine: Engine, size: int, dry_run: bool, stop: threading.Event | None
    ) -> None:
        self.engine = engine
        self.size = size
        self.dry_run = dry_run
        self.stop = stop

    def delete(self, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
        """Delete the rows matching ``where``; how many."""
        done, _ = self._each(table, where, None)
        return done

    def delete_alerts(self, where: sa.ColumnElement[bool], with_outbox: bool) -> tuple[int, int]:
        """Delete the alerts matching ``where`` and their outbox rows; (alerts, outbox rows)."""
        outbox = outbox_table

        def cascade(conn: Connection, ids: Sequence[Any]) -> int:
            result = conn.execute(sa.delete(outbox).where(outbox.c.alert_id.in_(ids)))
            return max(result.rowcount, 0)

        if self.dry_run:
            alert_ids = sa.select(alerts_table.c.alert_id).where(where)
            with self.engine.connect() as conn:
                alerts = _count(conn, alerts_table, where)
                queued = (
                    _count(conn, outbox, outbox.c.alert_id.in_(alert_ids)) if with_outbox else 0
                )
            return alerts, queued
        return self._each(alerts_table, where, cascade if with_outbox else None)

    def ids(self, table: sa.Table, ids: Sequence[Any]) -> int:
        """Delete the rows with these primary keys, a batch per transaction; how many."""
        if self.dry_run:
            return len(ids)
        done = 0
        for start in range(0, len(ids), self.size):
            with self.engine.begin() as conn:
                chunk = ids[start : start + self.size]
                done += max(conn.execute(sa.delete(table).where(_key_in(table, chunk))).rowcount, 0)
        return done

    def _each(
        self,
        table: sa.Table,
        where: sa.ColumnElement[bool],
        cascade: Callable[[Connection, Sequence[Any]], int] | None,
    ) -> tuple[int, int]:
        if self.dry_run:
            with self.engine.connect() as conn:
                return _count(conn, table, where), 0
        key = list(table.primary_key.columns)
        done = also = 0
        while self.stop is None or not self.stop.is_set():
            with self.engine.begin() as conn:
                rows = conn.execute(sa.select(*key).where(where).limit(self.size)).all()
                if not rows:
                    break
                ids = [row[0] if len(key) == 1 else tuple(row) for row in rows]
                if cascade is not None:
                    also += cascade(conn, ids)
                # ``where`` again: a row that changed since the select (say, an alert
                # that is no longer resolved) is left alone.
                deleted = conn.execute(sa.delete(table).where(_key_in(table, ids), where))
                done += max(deleted.rowcount, 0)
            if len(rows) < self.size:
                break
        return done, also


def _key_in(table: sa.Table, ids: Sequence[Any]) -> sa.ColumnElement[bool]:
    key = list(table.primary_key.columns)
    if len(key) == 1:
        return key[0].in_(ids)
    return sa.tuple_(*key).in_(ids)


def _count(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(where)
    return int(conn.execute(query).scalar_one())


def _present(engine: Engine) -> set[str]:
    names = (
        events_table,
        dead_letters_table,
        alerts_table,
        outbox_table,
        attempts_table,
        corrections_table,
    )
    inspector = sa.inspect(engine)
    return {t.name for t in names if inspector.has_table(t.name)}


def check_batch(batch_size: int) -> None:
    """Raise ValueError unless ``batch_size`` is at least 1."""
    if batch_size < 1:
        msg = f"batch_size must be at least 1, got {batch_size}"
        raise ValueError(msg)


def _forget_dead_letters(run: _Batches, conversation_id: str) -> int:
    """Delete the dead letters keyed by or naming the conversation; how many."""
    table = dead_letters_table
    key = conversation_id.encode("utf-8")
    # Both ways a producer may escape the id in JSON (non-ASCII as is, or \uXXXX).
    forms = {json.dumps(conversation_id, ensure_ascii=a)[1:-1] for a in (False, True)}
    names_it = re.compile(
        rb'"conversation_id"\s*:\s*"(?:'
        + b"|".join(re.escape(f.encode("utf-8")) for f in sorted(forms))
        + rb')"'
    )
    matched: list[int] = []
    last = 0
    while True:
        with run.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.id, table.c.key, table.c.raw)
                .where(table.c.id > last)
                .order_by(table.c.id)
                .limit(run.size)
            ).all()
        for row_id, row_key, raw in rows:
            if (row_key is not None and bytes(row_key) == key) or (
                raw is not None and names_it.search(bytes(raw))
            ):
                matched.append(int(row_id))
        if len(rows) < run.size:
            break
        last = int(rows[-1][0])
    return run.ids(table, matched)


def _scrub_evidence(engine: Engine, texts: list[str], batch_size: int, dry_run: bool) -> int:
    """Remove evidence quoting ``texts`` from every alert payload; how many entries."""
    table = alerts_table
    removed = 0
    last: str | None = None
    while True:
        query = sa.select(table.c.alert_id, table.c.payload).order_by(table.c.alert_id)
        if last is not None:
            query = query.where(table.c.alert_id > last)
        with engine.connect() as conn:
            rows = conn.execute(query.limit(batch_size)).all()
        for alert_id, payload in rows:
            removed += _scrub_alert(engine, alert_id, payload, texts, dry_run)
        if len(rows) < batch_size:
            return removed
        last = rows[-1][0]


def _scrub_alert(
    engine: Engine, alert_id: str, payload: str, texts: list[str], dry_run: bool
) -> int:
    """Rewrite one alert's payload without the matching evidence; how many entries went."""
    table = alerts_table
    for _ in range(_SCRUB_ATTEMPTS):
        cleaned, removed = _without_evidence(payload, texts)
        if not removed or dry_run:
            return removed
        with engine.begin() as conn:
            # Only over the payload we read: the evaluator may rewrite it when resolving.
            updated = conn.execute(
                sa.update(table)
                .where(table.c.alert_id == alert_id, table.c.payload == payload)
                .values(payload=cleaned)
            ).rowcount
            if updated:
                return removed
            current = conn.execute(
                sa.select(table.c.payload).where(table.c.alert_id == alert_id)
            ).scalar_one_or_none()
        if current is None:
            return 0  # deleted meanwhile
        payload = str(current)
    msg = f"alert {alert_id} kept changing while its evidence was removed; run again"
    raise StoreError(msg)


def _without_evidence(payload: str, texts: list[str]) -> tuple[str, int]:
    """``payload`` without the evidence entries quoting one of ``texts``; and how many."""
    try:
        event = json.loads(payload)
    except ValueError:
        return payload, 0
    evidence = event.get("evidence") if isinstance(event, dict) else None
    if not isinstance(evidence, list):
        return payload, 0

    def quotes(entry: Any) -> bool:
        excerpt = entry.get("text_excerpt") if isinstance(entry, dict) else None
        if not isinstance(excerpt, str) or not excerpt:
            return False
        return any(text.startswith(excerpt) for text in texts)

    kept = [entry for entry in evidence if not quotes(entry)]
    if len(kept) == len(evidence):
        return payload, 0
    event["evidence"] = kept
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")), len(evidence) - len(kept)
