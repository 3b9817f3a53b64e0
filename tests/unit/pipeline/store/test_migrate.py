"""The one schema and its Alembic revisions: a schema-4 store upgrades in place, rows intact.

``tests/fixtures/store_schema4/`` holds a store written by main 242fde2's own code (the
release before Alembic; ``make.py`` there says how), dumped for SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.errors import StoreError
from pipeline.store import open_store
from pipeline.store.migrate import current, head, migrate
from pipeline.store.schema import metadata
from tests.support.stores import BACKENDS

FIXTURE = Path(__file__).parents[3] / "fixtures" / "store_schema4"
#: The tables 242fde2 wrote, each with rows in the fixture.
SCHEMA4_TABLES = (
    "alerts", "attempts", "corrections", "dead_letters", "events", "leases", "ops_alerts",
    "outbox", "store_meta",
)


@pytest.fixture(params=BACKENDS)
def schema4_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store as 242fde2 left it, loaded from the dump."""
    if request.param == "sqlite":
        import sqlite3

        path = tmp_path / "old.db"
        with sqlite3.connect(path) as conn:
            conn.executescript((FIXTURE / "sqlite.sql").read_text(encoding="utf-8"))
        conn.close()
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("empty_postgres_url")
    # The dump sets search_path to '' for its session: a connection of its own.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((FIXTURE / "postgresql.sql").read_text(encoding="utf-8").encode())
    yield url


def _rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the schema-4 tables, in a stable order, as the database returns them."""
    found = sa.MetaData()
    found.reflect(engine, only=SCHEMA4_TABLES)
    with engine.connect() as conn:
        return {
            name: sorted(
                (tuple(r) for r in conn.execute(sa.select(found.tables[name]))), key=repr
            )
            for name in SCHEMA4_TABLES
        }


def test_a_schema_4_store_upgrades_in_place_with_its_rows(schema4_url: str) -> None:
    engine = sa.create_engine(schema4_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        before = _rows(engine)
        assert all(before[name] for name in SCHEMA4_TABLES)  # the fixture fills every table
        with engine.connect() as conn:
            assert current(conn) is None  # written before Alembic
        revision, tables = migrate(schema4_url)
        assert revision == head()
        assert {"alert_progress", "alert_scope_state", "alembic_version"} <= set(tables)
        assert _rows(engine) == before
        with engine.connect() as conn:
            assert current(conn) == head()
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert migrate(schema4_url)[0] == head()  # again: nothing to do
        assert _rows(engine) == before
    finally:
        engine.dispose()
    with open_store(schema4_url, migrate=False) as store:  # what the dashboard does
        assert store.count() == 10 and store.count("news") == 2


def test_a_new_store_gets_exactly_the_declared_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            assert set(sa.inspect(conn).get_table_names()) == set(metadata.tables)
    finally:
        engine.dispose()


def test_without_migrate_nothing_is_created_and_the_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    with pytest.raises(StoreError, match="attnwatch migrate"):
        open_store(f"sqlite:///{path}", migrate=False)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_store_at_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    migrate(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    finally:
        engine.dispose()
    for migrating in (True, False):
        with pytest.raises(StoreError, match="9999_future"):
            open_store(url, migrate=migrating)


def test_the_raw_store_is_migrated_and_a_pre_alembic_one_adopted(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pipeline.store.raw import RAW_VERSION_TABLE, RawEvent, RawStore, raw_metadata

    old_url = f"sqlite:///{tmp_path}/old_raw.db"
    engine = sa.create_engine(old_url)
    try:
        raw_metadata.create_all(engine)  # what 242fde2's RawStore did on first use
        at = datetime(2026, 11, 26, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(raw_metadata.tables["raw_events"]),
                [{"input_id": "chat:1", "kind": "chat", "conversation_id": "c1",
                  "text": "my card", "event_time": at}],
            )
    finally:
        engine.dispose()
    for url in (old_url, f"sqlite:///{tmp_path}/new_raw.db"):
        store = RawStore(url)
        try:
            store.write([RawEvent("chat:2", "chat", "c1", "hello", datetime.now(UTC))], [])
            with store.engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"version_table": RAW_VERSION_TABLE}
                )
                assert context.get_current_revision() == "0001_raw"
                assert compare_metadata(context, raw_metadata) == []
                ids = conn.execute(sa.text("SELECT input_id FROM raw_events")).scalars().all()
        finally:
            store.close()
        assert sorted(ids) == (["chat:1", "chat:2"] if url == old_url else ["chat:2"])


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/race.db"
        return
    url: str = request.getfixturevalue("empty_postgres_url")
    yield url


def test_replicas_migrating_together_each_succeed_once(empty_url: str) -> None:
    import threading

    errors: list[BaseException] = []
    revisions: list[str] = []

    def run() -> None:
        try:
            revisions.append(migrate(empty_url)[0])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and revisions == [head()] * 6
    engine = sa.create_engine(empty_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    finally:
        engine.dispose()
