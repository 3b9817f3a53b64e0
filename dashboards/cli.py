"""Serving the dashboard: ``serve(settings)`` and the Typer command ``dashboard``.

``python -m dashboards`` runs the command; the ``attnwatch`` CLI can register
:func:`dashboard` as a command (it takes its own ``--config``, ``--store-url`` and
``--model-dir``, since it cannot see another app's global options) or call
:func:`serve` with the settings it already has.  The bind is checked before anything is
opened: a non-loopback ``dashboard_host`` without ``dashboard_token`` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from dashboards.app import create_app
from dashboards.auth import check_bind
from pipeline.config import Settings, load_settings
from pipeline.errors import AttnwatchError
from pipeline.logs import configure_logging

#: Seconds uvicorn waits for open requests (live streams) when asked to stop.
GRACEFUL_SHUTDOWN_S = 5


def serve(settings: Settings) -> None:
    """Serve the dashboard with uvicorn on ``dashboard_host``:``dashboard_port`` until stopped.

    Raises :class:`~pipeline.errors.ConfigError` for a non-loopback host without a token
    and :class:`~pipeline.errors.StoreError` when the store cannot be opened.  Access logs
    are off: request lines carry the analysts' search text and filter values.
    """
    check_bind(settings.dashboard_host, settings.dashboard_token)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def dashboard(
    config: Annotated[
        Path | None, typer.Option(help="TOML file of settings (also ATTNWATCH_CONFIG).")
    ] = None,
    store_url: Annotated[
        str | None, typer.Option(help="sqlite:///PATH or postgresql://user:pass@host/db.")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Saved model directory (for the model page, labels).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind; beyond loopback ATTNWATCH_DASHBOARD_TOKEN is needed."),
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port to bind.")] = None,
) -> None:
    """Serve the analyst dashboard: live feed, trends, conversations, tickers, alerts, model.

    Settings come from these flags, the environment (ATTNWATCH_*) and the TOML file; the
    token only from the environment or the file (ATTNWATCH_DASHBOARD_TOKEN), never a
    flag, which other users could read in ps.
    """
    try:
        settings = load_settings(
            config,
            store_url=store_url,
            model_dir=model_dir,
            dashboard_host=host,
            dashboard_port=port,
        )
        configure_logging(settings.log_level, settings.log_format)
        serve(settings)
    except AttnwatchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
