"""The one ``attnwatch`` command line: one Typer app, one module per command group.

``app`` holds the global options (they load the root settings, :mod:`attnwatch.settings`);
``settings``, ``kafka``, ``run``, ``model``, ``explain``, ``alerts`` and ``purge`` each
register their commands on it when imported; ``deadletter`` is a command group
(``attnwatch deadletter list|replay``) added here as a sub-app, as is ``fast``
(``attnwatch model export-onnx``); ``dashboard`` serves the analyst dashboard (also on a
thread, for the demo) and writes the report.  ``app`` is the console script
(``attnwatch.cli:app``) and ``python -m attnwatch``.  Part of the composition root: it may
import everything; only ``attnwatch`` imports it.
"""

from __future__ import annotations

from attnwatch.cli import (
    alerts,
    deadletter,
    explain,
    fast,
    kafka,
    model,
    purge,
    run,
    settings,
)
from attnwatch.cli.app import app, fail, state
from attnwatch.cli.dashboard import HostOption, PortOption, report, serve, serving
from pipeline.errors import AttnwatchError

app.add_typer(deadletter.deadletter_app, name="deadletter")
app.add_typer(fast.model_app, name="model")

__all__ = [
    "alerts",
    "app",
    "deadletter",
    "explain",
    "fast",
    "kafka",
    "model",
    "purge",
    "run",
    "settings",
]

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
