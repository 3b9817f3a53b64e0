"""One holder of a named lease across processes, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.store import open_store
from pipeline.store.lease import Lease

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'l.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_store(url) as store:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM leases")  # migrated, empty
        yield store.engine


def test_one_holder_until_the_lease_expires(engine):
    a = Lease(engine, "job", "a", ttl_s=30)
    b = Lease(engine, "job", "b", ttl_s=30)
    assert a.acquire(T0) and not b.acquire(T0 + timedelta(seconds=1))
    assert a.acquire(T0 + timedelta(seconds=20))  # renewal pushes the expiry
    assert not b.acquire(T0 + timedelta(seconds=40))
    assert b.acquire(T0 + timedelta(seconds=51))  # a stopped renewing: b takes over
    assert not a.acquire(T0 + timedelta(seconds=52))


def test_release_hands_over_at_once_and_names_are_independent(engine):
    a = Lease(engine, "job", "a")
    b = Lease(engine, "job", "b")
    other = Lease(engine, "other-job", "b")
    assert a.acquire(T0) and other.acquire(T0)
    a.release()
    assert b.acquire(T0 + timedelta(seconds=1))


def test_ttl_must_be_positive(engine):
    with pytest.raises(ValueError):
        Lease(engine, "job", "a", ttl_s=0)
