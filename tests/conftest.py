"""Shared fixtures live in tests/support (a real Tansu broker, a tiny trained model, stores).

This file registers that plugin and resets what the CLI changes between tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.support.plugin"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The CLI's callback points the root logger at CliRunner's captured stderr, which is
    # closed after the call; give later tests the logging they started with.
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    handlers, level, kafka_level = root.handlers[:], root.level, kafka.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    kafka.setLevel(kafka_level)


@pytest.fixture(autouse=True)
def _no_config_file_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ATTNWATCH_"):
            monkeypatch.delenv(name)
