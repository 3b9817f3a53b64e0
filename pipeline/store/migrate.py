"""The store's schema, created and migrated by Alembic: ``attnwatch migrate``.

Every table is declared once (:mod:`pipeline.store.schema`) and every change to them is an
Alembic revision in :mod:`pipeline.store.migrations` (shipped in the package: an installed
wheel migrates without an ``alembic.ini``).  Only :func:`upgrade` runs DDL.  A deployment
runs ``attnwatch migrate`` first (a Kubernetes Job, a compose one-shot) so a schema
problem stops the rollout before any replica starts; ``attnwatch run`` also upgrades on
start, so a laptop needs no extra step.  The dashboard only checks (:func:`check_current`)
and can run as a read-only store user.

Upgrades hold a lock for their whole transaction (an advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so replicas upgrading together, or an upgrade beside a
running replica, are harmless.  A store written before Alembic (store schema 1 to 4) has
no ``alembic_version``; the baseline revision adopts it in place, rows intact.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.engine import (
    create_engine,
    describe,
    insert_on_conflict,
    normalise_url,
    store_errors,
)
from pipeline.store.tables import STORE_SCHEMA_VERSION, alembic_version_table, store_meta_table

# Any fixed number: serialises concurrent upgrades on one server.
_PG_SCHEMA_LOCK_ID = 0x61747477
_SCRIPTS = Path(__file__).with_name("migrations")
#: The opt-in raw store's revisions (a database of its own, see :mod:`pipeline.store.raw`).
_RAW_SCRIPTS = Path(__file__).with_name("raw_migrations")


def _config(connection: Connection | None = None, scripts: Path = _SCRIPTS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this attnwatch knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        msg = "no store migrations found in the package"
        raise StoreError(msg)
    return found


def current(conn: Connection) -> str | None:
    """The store's revision; ``None`` for a new store or one from before Alembic."""
    return MigrationContext.configure(conn).get_current_revision()


def _stored_schema_version(conn: Connection, where: str) -> int | None:
    if not sa.inspect(conn).has_table(store_meta_table.name):
        return None
    value = conn.execute(
        sa.select(store_meta_table.c.value).where(store_meta_table.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        return None
    try:
        version = int(value)
    except ValueError as exc:
        msg = f"store {where} has an unreadable schema_version {value!r}"
        raise StoreError(msg) from exc
    if version > STORE_SCHEMA_VERSION:
        msg = (
            f"store {where} has schema version {version}, newer than this attnwatch's "
            f"{STORE_SCHEMA_VERSION}; upgrade attnwatch to use it"
        )
        raise StoreError(msg)
    return version


def _check_known(conn: Connection, where: str) -> str | None:
    revision = current(conn)
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if revision is not None and revision not in known:
        msg = (
            f"store {where} is at schema revision {revision}, which this attnwatch does not "
            "know (written by a newer one?); upgrade attnwatch to use it"
        )
        raise StoreError(msg)
    return revision


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_ID)))
    else:
        # Python's sqlite3 starts a transaction only before INSERT/UPDATE/DELETE, so DDL
        # would autocommit statement by statement; BEGIN IMMEDIATE takes the write lock
        # now and makes the whole upgrade one transaction.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_raw(engine: Engine) -> str:
    """Bring the opt-in raw store to its newest revision, as :func:`upgrade` does the store."""
    where = engine.url.render_as_string(hide_password=True)
    with store_errors(f"could not open raw store {where}"), engine.begin() as conn:
        _lock(conn)
        config = _config(conn, _RAW_SCRIPTS)
        command.upgrade(config, "head")
        return str(ScriptDirectory.from_config(config).get_current_head())


def upgrade(engine: Engine) -> str:
    """Bring the store to the newest revision in one locked transaction; that revision."""
    where = engine.url.render_as_string(hide_password=True)
    with store_errors(f"could not open store {where}"), engine.begin() as conn:
        _lock(conn)
        # Check before changing anything: a newer store may have a different layout.
        legacy = _stored_schema_version(conn, where)
        if _check_known(conn, where) is not None and (legacy or 0) < STORE_SCHEMA_VERSION:
            # Pre-Alembic code wrote an older layout into this store since it was last
            # upgraded: adopt it again from the baseline (every revision is idempotent).
            conn.execute(sa.delete(alembic_version_table))
        # Alembic runs inside this transaction (it sees one already begun).
        command.upgrade(_config(conn), "head")
        row = {"key": "schema_version", "value": str(STORE_SCHEMA_VERSION)}
        conn.execute(
            insert_on_conflict(store_meta_table, conn.dialect, ["key"], update=["value"]),
            row,
        )
        return head()


def check_current(engine: Engine) -> None:
    """Refuse (:class:`StoreError`) a store that is not at this attnwatch's revision; no DDL."""
    where = engine.url.render_as_string(hide_password=True)
    with store_errors(f"could not open store {where}"), engine.connect() as conn:
        revision = _check_known(conn, where)
    if revision != head():
        msg = (
            f"store {where} is at schema revision {revision or 'none'}, not {head()}: "
            "run `attnwatch migrate` (as a user that may change the schema) first"
        )
        raise StoreError(msg)


def migrate(url: str) -> tuple[str, list[str]]:
    """Bring the store at ``url`` to the newest revision; (revision, table names)."""
    parsed = normalise_url(url)
    try:
        engine = create_engine(parsed)
    except (SQLAlchemyError, OSError) as exc:
        masked = parsed.render_as_string(hide_password=True)
        msg = f"could not open store {masked}: {describe(exc)}"
        raise StoreError(msg) from exc
    try:
        revision = upgrade(engine)
        try:
            names = sorted(sa.inspect(engine).get_table_names())
        except SQLAlchemyError as exc:
            msg = f"table list: {describe(exc)}"
            raise StoreError(msg) from exc
    finally:
        engine.dispose()
    return revision, names
