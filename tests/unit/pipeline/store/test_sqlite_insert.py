"""The SQLite events insert compiled once stores exactly what SQLAlchemy's own would."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.store import open_store
from tests.support.events import T0, chat_event, news_event

pytestmark = pytest.mark.unit


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY input_id").fetchall()


def test_rows_are_byte_identical_to_sqlalchemys(tmp_path: Path) -> None:
    events = [chat_event(n, T0 + timedelta(seconds=n, microseconds=7 * n)) for n in range(20)]
    events += [news_event(n, T0 + timedelta(minutes=n)) for n in range(20, 30)]
    fast, slow = tmp_path / "fast.db", tmp_path / "slow.db"
    with open_store(f"sqlite:///{fast}") as store:
        assert store.write(events[:25], []) == 25
        # Half of them again: only the 5 new ones count.
        assert store.write(events[20:], []) == 5
    with open_store(f"sqlite:///{slow}") as store:
        store._sqlite_events = None  # noqa: SLF001 - SQLAlchemy's own executemany
        assert store.write(events[:25], []) == 25
        assert store.write(events[20:], []) == 5
    assert _rows(fast) == _rows(slow)
    assert len(_rows(fast)) == 30
