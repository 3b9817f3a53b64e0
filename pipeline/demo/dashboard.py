"""The analyst dashboard beside the demo: what the demo is given to serve it.

``dashboards`` sits above ``pipeline`` and nothing in ``pipeline`` may import it, so the
demo does not start the dashboard itself: the composition root (``attnwatch``) passes a
:data:`DashboardServer`, which serves the dashboard on a uvicorn thread in the demo's
own process (``dashboards.cli.serving``) and yields its URL (``None`` if it did not start).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from pipeline.config import DashboardSettings, StoreSettings
from pipeline.config_groups import ModelSettings

#: Serves the dashboard on the given store and model until the block exits; yields its URL.
DashboardServer = Callable[
    [DashboardSettings, StoreSettings, ModelSettings], AbstractContextManager[str | None]
]
