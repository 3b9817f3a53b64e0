"""The ``attnwatch`` command: the pipeline's commands plus ``dashboard`` and ``report``.

The console script points here.  ``pipeline`` may not import ``dashboards`` (data flows
up into the dashboards, never back), so the two command sets are put together at the top,
in this module; ``python -m pipeline.cli`` still runs the pipeline's commands alone.
"""

from __future__ import annotations

from dashboards.cli import HostOption, PortOption, report, serve
from pipeline.cli import app
from pipeline.cli.app import fail, state
from pipeline.errors import AttnwatchError

__all__ = ["app"]


@app.command("dashboard")
def dashboard_command(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Serve the analyst dashboard: live feed, trends, conversations, tickers, alerts, model.

    Reads the store and model given by the global options (``--store-url``,
    ``--model-dir``).  The token comes only from the environment or the config file
    (``ATTNWATCH_DASHBOARD_TOKEN``), never a flag, which other users could read in ``ps``.
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

if __name__ == "__main__":
    app()
