"""Serving the dashboard (``serve``, ``serving`` on a thread, ``dashboard``) and ``report``.

The composition root (``attnwatch``) registers these commands on the one CLI, calls
:func:`serve` with the settings it already has, and hands :func:`serving` to the demo.
:func:`dashboard` takes its own ``--config``, ``--store-url`` and ``--model-dir``.  The
bind is checked before anything is opened: a non-loopback ``dashboard.host`` without
``dashboard.token`` is refused.
:func:`report` writes the self-contained HTML summary of :mod:`dashboards.report`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from attnwatch.settings import Settings, load_settings
from dashboards.data.filters import WINDOWS, BadParameter, Window, parse_time, parse_window
from dashboards.report import build_report
from dashboards.web.app import create_app
from dashboards.web.auth import check_bind
from pipeline.config import DashboardSettings, ModelSettings, StoreSettings
from pipeline.errors import AttnwatchError
from pipeline.logs import configure_logging
from pipeline.store import open_store

#: Options shared by the commands here and by the root CLI (``attnwatch.cli``).
ConfigOption = Annotated[
    Path | None, typer.Option(help="TOML file of settings (also ATTNWATCH_CONFIG).")
]
StoreUrlOption = Annotated[
    str | None, typer.Option(help="sqlite:///PATH or postgresql://user:pass@host/db.")
]
HostOption = Annotated[
    str | None,
    typer.Option(help="Address to bind; beyond loopback ATTNWATCH_DASHBOARD_TOKEN is needed."),
]
PortOption = Annotated[int | None, typer.Option(min=1, max=65535, help="Port to bind.")]

#: Seconds uvicorn waits for open requests (live streams) when asked to stop.
GRACEFUL_SHUTDOWN_S = 5
#: How long the dashboard may take to start serving beside the demo (store, model card).
START_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


def dashboard_app(
    settings: Settings, *, live_poll_s: float = 1.0, live_max_s: float = 300.0
) -> FastAPI:
    """The dashboard app wired from the global ``settings``: only what it needs is passed.

    ``live_poll_s`` and ``live_max_s`` as in :func:`~dashboards.web.app.create_app`.
    """
    return create_app(
        settings.dashboard,
        settings.store.url,
        settings.model.dir,
        alert_current_s=settings.alerts.current_s,
        live_poll_s=live_poll_s,
        live_max_s=live_max_s,
    )


def serve(settings: Settings) -> None:
    """Serve the dashboard with uvicorn on ``dashboard_host``:``dashboard_port`` until stopped.

    Raises :class:`~pipeline.errors.ConfigError` for a non-loopback host without a token
    and :class:`~pipeline.errors.StoreError` when the store cannot be opened.  Access logs
    are off: request lines carry the analysts' search text and filter values.
    """
    check_bind(settings.dashboard.host, settings.dashboard.token)
    app = dashboard_app(settings)
    uvicorn.run(
        app,
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


@contextlib.contextmanager
def serving(
    dashboard: DashboardSettings, store: StoreSettings, model: ModelSettings
) -> Iterator[str | None]:
    """Serve the dashboard on a uvicorn thread in this process; yield its URL.

    The demo's :data:`~attnwatch.demo.dashboard.DashboardServer`.  Yields ``None`` (and
    logs why) when the server did not start within :data:`START_TIMEOUT_S`; stops the
    server (bounded by :data:`GRACEFUL_SHUTDOWN_S`) when the block exits.
    """
    check_bind(dashboard.host, dashboard.token)
    app = create_app(dashboard, store.url, model.dir)
    config = uvicorn.Config(
        app,
        host=dashboard.host,
        port=dashboard.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind (port in use)
            log.warning("dashboard server stopped", extra={"exit": exc.code})

    # uvicorn installs signal handlers only on the main thread: the demo's own stay.
    thread = threading.Thread(target=run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.05)
    url = f"http://{dashboard.host}:{dashboard.port}/"
    if not server.started:
        log.warning("dashboard did not start", extra={"url": url})
    try:
        yield url if server.started else None
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_S + 5.0)


def dashboard(
    config: ConfigOption = None,
    store_url: StoreUrlOption = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Saved model directory (for the model page, labels).")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
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


def report_window(since: str, until: str | None, now: datetime) -> Window:
    """The window of ``--since`` (a preset such as ``24h``, or an ISO time) and ``--until``.

    Raises :class:`~dashboards.data.filters.BadParameter`.
    """
    end = parse_time(until, "until")
    if since.strip() in WINDOWS:
        return parse_window(since.strip(), None, end, now)
    try:
        start = parse_time(since, "since")
    except BadParameter as exc:
        msg = f"{exc}, or one of {', '.join(WINDOWS)}"
        raise BadParameter(msg) from None
    return parse_window(None, start, end, now)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def report(
    since: Annotated[
        str,
        typer.Option(
            help=f"Window: one of {', '.join(WINDOWS)} back from --until, or an ISO time."
        ),
    ] = "24h",
    out: Annotated[Path, typer.Option(help="HTML file to write (replaced if it exists).")] = Path(
        "report.html"
    ),
    until: Annotated[
        str | None, typer.Option(help="End of the window, ISO 8601 (default: now); UTC if no zone.")
    ] = None,
    title: Annotated[str, typer.Option(help="Heading of the report.")] = "attnwatch report",
    config: ConfigOption = None,
    store_url: StoreUrlOption = None,
) -> None:
    """Write a self-contained HTML summary of a window that an analyst can mail around.

    Volume, sentiment share (overall and per channel), negative share by channel and
    ticker, intent mix, the alert episodes with their evidence, and the most negative
    messages with their words shaded by attention.  Charts and styles are inside the file;
    opening it loads nothing from the network.
    """
    try:
        settings = load_settings(config, store_url=store_url)
        configure_logging(settings.log_level, settings.log_format)
        window = report_window(since, until, datetime.now(UTC))
        # Reads only (no DDL): a read-only store user will do.
        with open_store(settings.store.url, migrate=False) as store:
            document = build_report(store.engine, window, title=title)
    except (AttnwatchError, BadParameter) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    try:
        out.write_text(document, encoding="utf-8")
    except OSError as exc:
        typer.secho(f"error: could not write {out}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    size = out.stat().st_size
    typer.echo(f"wrote {out} ({_size(size)}, {size} bytes)")
