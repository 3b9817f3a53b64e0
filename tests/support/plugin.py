"""Pytest plugin: the session's shared fixtures and the cost markers.

Registered from ``tests/conftest.py``.  Session fixtures are per process: under
pytest-xdist every worker starts its own broker and PostgreSQL cluster (free ports,
directories of their own); the tiny model is trained once per run and shared by the
workers through a file lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from consumers.broker import EmbeddedBroker
from tests.support.model import train_tiny_model
from tests.support.postgres import postgres_url
from tests.support.stores import empty_postgres_url, sqlite_url, store, store_url

__all__ = [
    "broker",
    "empty_postgres_url",
    "postgres_url",
    "sqlite_url",
    "store",
    "store_url",
    "tiny_model",
]

#: tests/<folder>/... -> the cost marker every test in it gets.
FOLDER_MARKERS = {"unit": "unit", "integration": "integration", "browser": "browser"}
#: Fixtures that cost a model training (once per run, but tens of seconds): a test that
#: needs one, directly or through another fixture, is ``slow``.
SLOW_FIXTURES = {"tiny_model"}
TESTS = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one torch thread per worker.

    Each worker is a process of its own; with torch's default of one thread per core, N
    workers on a 2-core machine run 2N compute threads that preempt each other in every
    matrix product.  One thread each keeps the workers from fighting over the cores.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the folder it lives in, and ``slow`` if it needs a trained model.

    A test under tests/unit that is explicitly marked ``integration`` (a PostgreSQL case of
    a parametrised store test) is not also ``unit``: ``-m unit`` is the fast loop.
    """
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        marker = FOLDER_MARKERS.get(folder)
        if marker is None:
            continue
        if marker == "unit" and item.get_closest_marker("integration") is not None:
            continue
        item.add_marker(marker)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free loopback port for the whole session (one per worker)."""
    log_file = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with EmbeddedBroker(log_file=log_file) as running:
        yield running


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run sees (the base temp's parent under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny attention classifier trained on a slice of the seed data (intent + sentiment).

    Trained once per run: the first worker to take the lock trains it, the others wait for
    the lock and load the same directory.  Tests must treat it as read-only.
    """
    shared = _shared_dir(tmp_path_factory)
    directory = shared / "tiny-model"
    with FileLock(str(shared / "tiny-model.lock"), timeout=600):
        if not (directory / ".trained").exists():
            train_tiny_model(directory)
            (directory / ".trained").touch()
    return directory
