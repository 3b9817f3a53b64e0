"""The analyst dashboard beside the demo: what the demo is given to serve it.

The demo takes a :data:`DashboardServer` rather than starting the dashboard itself, so
a test can give it another (or none): the CLI passes
:func:`attnwatch.cli.dashboard.serving`, which serves the dashboard on a uvicorn thread
in the demo's own process and yields its URL (``None`` if it did not start).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from pipeline.config import DashboardSettings, ModelSettings, StoreSettings

#: Serves the dashboard on the given store and model until the block exits; yields its URL.
DashboardServer = Callable[
    [DashboardSettings, StoreSettings, ModelSettings], AbstractContextManager[str | None]
]
