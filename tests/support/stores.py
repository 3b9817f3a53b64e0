"""Store fixtures: an empty store on SQLite and on the session's PostgreSQL cluster.

``store_url`` is parametrised: every test that takes it runs once on SQLite and once on
PostgreSQL (the PostgreSQL case is marked ``integration``: it needs the cluster).  A test
module that needs one backend, or a pre-filled store, defines its own ``store_url`` from
``sqlite_url`` or ``empty_postgres_url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store import Store, open_store
from tests.support.postgres import drop_everything

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store in a directory that does not exist yet (``open_store`` creates it)."""
    return f"sqlite:///{tmp_path}/store/attnwatch.db"


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """The session cluster's database, empty before the test and after it."""
    drop_everything(postgres_url)
    try:
        yield postgres_url
    finally:
        drop_everything(postgres_url)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """An empty store's URL, once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "empty_postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The store at ``store_url``, opened (migrated) and closed after the test."""
    with open_store(store_url) as opened:
        yield opened
