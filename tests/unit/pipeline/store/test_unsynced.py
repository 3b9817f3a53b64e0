"""Attempt counts are written without waiting for the disk, and only they."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipeline.store import Store
from pipeline.store.attempts import AttemptLog
from pipeline.store.engine import unsynced

pytestmark = pytest.mark.unit


def _level(conn: sa.Connection) -> str:
    if conn.dialect.name == "sqlite":
        # 1 NORMAL, 2 FULL
        return {1: "relaxed", 2: "synced"}[conn.exec_driver_sql("PRAGMA synchronous").scalar()]
    value = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    return "relaxed" if value == "off" else "synced"


def _synced(store: Store) -> sa.Engine:
    """The store's engine, its one pooled connection synced (the test cluster runs with
    synchronous_commit off, so PostgreSQL's session is set on first)."""
    engine = store.engine
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.exec_driver_sql("SET synchronous_commit = on")
            conn.commit()
        assert _level(conn) == "synced"
    return engine


def test_only_the_unsynced_transaction_is_relaxed(store: Store) -> None:
    engine = _synced(store)
    with unsynced(engine) as conn:
        assert _level(conn) == "relaxed"
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    # Committed, and the pooled connection (SQLite: the same one) is synced again.
    with engine.connect() as conn:
        assert _level(conn) == "synced"
        assert conn.exec_driver_sql("SELECT count(*) FROM probe").scalar() == 1


def test_a_failed_unsynced_transaction_rolls_back_and_leaves_the_pool_synced(
    store: Store,
) -> None:
    engine = _synced(store)
    with unsynced(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
    with pytest.raises(RuntimeError), unsynced(engine) as conn:
        conn.exec_driver_sql("INSERT INTO probe VALUES (2)")
        raise RuntimeError
    with engine.connect() as conn:
        assert _level(conn) == "synced"
        assert conn.exec_driver_sql("SELECT count(*) FROM probe").scalar() == 0


def test_attempt_counts_still_count(store: Store) -> None:
    log = AttemptLog(store.engine)
    first = [("chat", 0, 1), ("chat", 0, 2)]
    assert log.begin(first) == {}
    assert log.begin(first) == {("chat", 0, 1): 1, ("chat", 0, 2): 1}
    log.start_one(("chat", 0, 1))
    assert log.counts() == {("chat", 0, 1): 2, ("chat", 0, 2): 1}
    log.finish(first)
    assert log.counts() == {}
