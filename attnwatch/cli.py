"""The one ``attnwatch`` command line: the pipeline's commands plus the dashboard's.

``pipeline.cli`` holds the pipeline's commands and the global options (they load the
settings); ``dashboards.cli`` holds ``dashboard`` and ``report``.  Neither may import
the other's direction, so they meet here, and here the demo is given the dashboard to
serve on a thread (``dashboards.cli.serving``).
"""

from __future__ import annotations

from dashboards.cli import HostOption, PortOption, report, serve, serving
from pipeline.cli import app
from pipeline.cli.app import fail, state
from pipeline.errors import AttnwatchError

__all__ = ["app"]

# `attnwatch demo` serves the dashboard in its own process, on a uvicorn thread.
state.dashboard = serving


@app.command("dashboard")
def dashboard_command(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Serve the analyst dashboard: live feed, trends, conversations, tickers, alerts, model.

    Reads the store and model given by the global options (``--store-url``,
    ``--model-dir``).  The token comes only from the environment or the config file
    (``ATTNWATCH_DASHBOARD__TOKEN``), never a flag, which other users could read in ``ps``.
    """
    update: dict[str, object] = {}
    if host is not None:
        update["host"] = host
    if port is not None:
        update["port"] = port
    try:
        serve(state.settings.replace(dashboard=update))
    except AttnwatchError as exc:
        fail(exc)


# The report takes its own --store-url (and --config): it is also run on its own, e.g. from
# cron, where no global options are given.
app.command("report")(report)
