"""The dashboard starts and reads on a store user that may only read: it runs no DDL.

SQLite: the same file opened read-only (``mode=ro``); PostgreSQL: a role granted ``SELECT``
and nothing else.  ``attnwatch migrate`` (here the fixtures' ``open_store``) made the schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from attnwatch.cli.dashboard import dashboard_app
from attnwatch.settings import Settings
from pipeline.errors import StoreError
from pipeline.store import open_store
from pipeline.store.migrate import migrate
from tests.unit.dashboards.conftest import N_CHATS, N_NEWS, chat, news

READER = "attnwatch_reader"


def _reads(url: str, model_dir: Path) -> None:
    """Start the app over ``url`` and read a page; prove the user cannot write."""
    settings = Settings(store_url=url, model_dir=model_dir, dashboard_host="127.0.0.1")
    with TestClient(dashboard_app(settings, live_max_s=0.3)) as client:
        response = client.get("/api/events", params={"limit": 200})
        assert response.status_code == 200
        assert len(response.json()["rows"]) == N_CHATS + N_NEWS
    with open_store(url, migrate=False) as store, pytest.raises(StoreError):
        store.write([chat(999)], [])


def test_the_dashboard_starts_on_a_read_only_sqlite_file(store_url: str, model_dir: Path) -> None:
    path = sa.make_url(store_url).database
    _reads(f"sqlite:///file:{path}?mode=ro&uri=true", model_dir)


@pytest.fixture
def reader_url(postgres_url: str) -> Iterator[str]:
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    found = sa.MetaData()
    found.reflect(engine)
    found.drop_all(engine)
    engine.dispose()
    migrate(postgres_url)
    with open_store(postgres_url) as store:
        store.write([chat(n) for n in range(N_CHATS)] + [news(n) for n in range(N_NEWS)], [])
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {READER}")
        conn.execute(f"CREATE ROLE {READER} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
    parts = urlsplit(postgres_url)
    yield postgres_url.replace(f"{parts.username}@", f"{READER}@", 1)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {READER}")
        conn.execute(f"DROP ROLE {READER}")


@pytest.mark.integration
def test_the_dashboard_starts_on_a_select_only_postgresql_role(
    reader_url: str, model_dir: Path
) -> None:
    _reads(reader_url, model_dir)
