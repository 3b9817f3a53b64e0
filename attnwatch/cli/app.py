"""The ``attnwatch`` Typer app, global options and helpers shared by the command modules."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from attnwatch.demo.dashboard import DashboardServer
from attnwatch.settings import Settings, load_settings
from pipeline.errors import AttnwatchError
from pipeline.logs import configure_logging

app = typer.Typer(
    help="attnwatch: streaming intent and sentiment monitor with attention explanations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
log = logging.getLogger("attnwatch")


class _State:
    settings: Settings
    #: Serves the dashboard beside ``demo``; set by the composition root (``attnwatch``).
    dashboard: DashboardServer | None = None


state = _State()


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option(help="TOML file of settings (also ATTNWATCH_CONFIG).")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers host:port[,...]; unset: embedded broker."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option(help="sqlite:///PATH or postgresql://user:pass@host/db.")
    ] = None,
    model_dir: Annotated[Path | None, typer.Option(help="Saved model directory.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="/metrics port; 0 disables.")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    log_format: Annotated[str | None, typer.Option(help="json or console.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
) -> None:
    """Options before the command apply to every command; see `attnwatch config`."""
    try:
        state.settings = load_settings(
            config,
            bootstrap_servers=bootstrap_servers,
            store_url=store_url,
            model_dir=model_dir,
            metrics_port=metrics_port,
            log_level=log_level.upper() if log_level else None,
            log_format=log_format,
            device=device,
        )
    except AttnwatchError as exc:
        fail(exc)
    configure_logging(state.settings.log_level, state.settings.log_format)


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` as a one-line error and exit with status 2."""
    console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def stop_on_signals(bound_s: float | None = None) -> threading.Event:
    """An event set by SIGTERM or SIGINT, for commands that drain before exiting.

    A second signal exits at once (status 128 + signal).  With ``bound_s``, a process
    still running ``bound_s`` + 5 seconds after the first signal is ended (status 1):
    draining is bounded even if something below never returns.
    """
    stop = threading.Event()

    def watchdog(limit_s: float) -> None:
        time.sleep(limit_s)
        log.error("shutdown took too long; exiting", extra={"bound_s": bound_s})
        os._exit(1)

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("second signal: exiting now", extra={"signal": name})
            os._exit(128 + signum)
        log.info("stopping", extra={"signal": name})
        stop.set()
        if bound_s is not None:
            threading.Thread(target=watchdog, args=(bound_s + 5.0,), daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
