"""The analyst dashboard beside the demo, as a child process (``python -m dashboards``).

A process rather than an import: ``dashboards`` sits above ``pipeline`` and nothing in
``pipeline`` may import it.  The child gets the demo's settings through ``ATTNWATCH_*``
variables, logs to a file, and is stopped (SIGTERM, then SIGKILL) when the block exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import Settings

log = logging.getLogger(__name__)

#: How long the dashboard may take to answer /healthz (imports, store, model card).
START_TIMEOUT_S = 60.0


@contextlib.contextmanager
def dashboard_process(settings: Settings, log_file: Path) -> Iterator[str | None]:
    """Run the dashboard on ``settings``' store; yield its URL (``None`` if it did not start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNWATCH_")}
    env.update(
        {
            "ATTNWATCH_STORE_URL": settings.store.url,
            "ATTNWATCH_MODEL_DIR": str(settings.model.dir),
            "ATTNWATCH_DASHBOARD_HOST": settings.dashboard.host,
            "ATTNWATCH_DASHBOARD_PORT": str(settings.dashboard.port),
            "ATTNWATCH_LOG_FORMAT": "json",
        }
    )
    if settings.dashboard.token is not None:
        env["ATTNWATCH_DASHBOARD_TOKEN"] = settings.dashboard.token.get_secret_value()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{settings.dashboard.host}:{settings.dashboard.port}/"
    with log_file.open("ab") as out:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "dashboards"], env=env, stdout=out, stderr=out
        )
        try:
            yield url if _answers(url + "healthz", child) else None
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)


def _answers(url: str, child: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                return bool(response.status == 200)
        except OSError:
            time.sleep(0.5)
    log.warning("dashboard did not start", extra={"exit": child.poll()})
    return False
