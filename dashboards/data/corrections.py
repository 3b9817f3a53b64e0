"""Analysts' corrections of the model's labels: the ``corrections`` table and its reads.

A correction records who changed which task's label of which stored event, from what to
what, and when.  Rows are only ever added: the newest correction of an event's task is
its label from then on, and the older ones stay as the history.  The table lives beside
``events`` in the analyst store (defined in :mod:`pipeline.store.dashboard_tables`); it holds no
message text (the export joins it with ``events``), only ids, labels and analyst names.

:meth:`CorrectionTable.labelled` is the training file ``attnwatch train --data`` reads
(``models.data.loading.load_labelled``): ``text`` plus the corrected ``intent`` and/or
``sentiment``.  A task an analyst did not correct is left empty, so the model is never
retrained on its own predictions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboards.data.filters import MAX_PARAMETER_CHARS, BadParameter
from models.data.loading import TASK_COLUMNS
from pipeline.store.dashboard_tables import corrections_table
from pipeline.store.engine import store_errors
from pipeline.store.tables import events_table

#: Tasks a correction can change (the labelled-CSV columns).
TASKS = TASK_COLUMNS
#: Ids per ``IN (...)`` list (SQLite allows 32,766 bound parameters).
_IN_CHUNK = 500

@dataclass(frozen=True)
class Correction:
    """One analyst's relabelling of one task of one event."""

    id: int
    input_id: str
    task: str
    old_label: str | None
    new_label: str
    analyst: str
    created_time: datetime


def check_correction(
    task: str, label: str, analyst: str, labels: dict[str, list[str]], has_intent: bool
) -> tuple[str, str, str]:
    """The cleaned ``(task, label, analyst)``; raises :class:`BadParameter` naming the problem.

    ``labels`` are the model's labels per task; ``has_intent`` says whether the event has
    an intent at all (news and agent turns do not).
    """
    task, label, analyst = task.strip(), label.strip(), analyst.strip()
    if task not in TASKS:
        msg = f"unknown task {task!r}: use {' or '.join(TASKS)}"
        raise BadParameter(msg)
    if task == "intent" and not has_intent:
        msg = "this event has no intent (news and agent turns are not given one)"
        raise BadParameter(msg)
    known = labels.get(task)
    if not known:
        msg = f"the model has no {task} labels to choose from"
        raise BadParameter(msg)
    if label not in known:
        msg = f"unknown {task} label {label!r}: use one of the model's labels"
        raise BadParameter(msg)
    if not analyst:
        msg = "analyst is required: say who made the correction"
        raise BadParameter(msg)
    if len(analyst) > MAX_PARAMETER_CHARS:
        msg = f"analyst is longer than {MAX_PARAMETER_CHARS} characters"
        raise BadParameter(msg)
    return task, label, analyst


def _correction(row: sa.Row[tuple[object, ...]]) -> Correction:
    m = row._mapping
    return Correction(
        id=int(m["id"]),
        input_id=str(m["input_id"]),
        task=str(m["task"]),
        old_label=None if m["old_label"] is None else str(m["old_label"]),
        new_label=str(m["new_label"]),
        analyst=str(m["analyst"]),
        created_time=m["created_time"],
    )


class CorrectionTable:
    """Reads and writes the ``corrections`` table (``attnwatch migrate`` creates it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self,
        input_id: str,
        task: str,
        old_label: str | None,
        new_label: str,
        analyst: str,
        now: datetime,
    ) -> Correction:
        """Record a correction (values already checked); returns it with its id."""
        table = corrections_table
        values = {
            "input_id": input_id,
            "task": task,
            "old_label": old_label,
            "new_label": new_label,
            "analyst": analyst,
            "created_time": now,
        }
        with store_errors("recording a correction"), self._engine.begin() as conn:
            inserted = conn.execute(sa.insert(table).values(**values).returning(table.c.id))
            new_id = int(inserted.scalar_one())
        return Correction(new_id, input_id, task, old_label, new_label, analyst, now)

    def for_events(self, input_ids: Iterable[str]) -> dict[str, list[Correction]]:
        """The corrections of these events, oldest first, by ``input_id``."""
        wanted = sorted(set(input_ids))
        found: dict[str, list[Correction]] = {}
        table = corrections_table
        with store_errors("reading corrections"), self._engine.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                stmt = (
                    sa.select(table)
                    .where(table.c.input_id.in_(chunk))
                    .order_by(table.c.created_time, table.c.id)
                )
                for row in conn.execute(stmt):
                    correction = _correction(row)
                    found.setdefault(correction.input_id, []).append(correction)
        return found

    def labelled(self) -> list[dict[str, str]]:
        """``{"text", "intent", "sentiment"}`` per corrected event still in the store.

        Each task holds the newest correction of that task ("" when never corrected);
        rows come in ``input_id`` order.
        """
        table, events = corrections_table, events_table
        newest = (
            sa.select(sa.func.max(table.c.id).label("id"))
            .group_by(table.c.input_id, table.c.task)
            .subquery()
        )
        stmt = (
            sa.select(table.c.input_id, table.c.task, table.c.new_label, events.c.text)
            .join(newest, newest.c.id == table.c.id)
            .join(events, events.c.input_id == table.c.input_id)
            .order_by(table.c.input_id, table.c.task)
        )
        with store_errors("reading corrections"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        by_event: dict[str, dict[str, str]] = {}
        for input_id, task, label, text in rows:
            by_event.setdefault(input_id, {"text": text, **dict.fromkeys(TASKS, "")})[task] = label
        return list(by_event.values())
