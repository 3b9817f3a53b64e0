"""Run-loop commands: ``run`` (a consumer-group member) and ``demo`` (everything in one process)."""

from __future__ import annotations

import enum
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console

from attnwatch.cli.app import app, console, fail, state, stop_on_signals
from pipeline.errors import AttnwatchError


class History(enum.Enum):
    """What ``run`` does with alert episodes found in history (``alert_history``)."""

    notify = "notify"
    record = "record"


@app.command()
def run(
    idle_exit: Annotated[
        float | None,
        typer.Option(
            help="Exit after this many idle seconds (batch jobs); alerts are evaluated up "
            "to the last event first."
        ),
    ] = None,
    history: Annotated[
        History | None,
        typer.Option(
            help="Alert episodes found in history (a backlog, a backfill): 'notify' or only "
            "'record' them; one still open at the end notifies anyway "
            "(default: ATTNWATCH_ALERT_HISTORY, else notify).",
        ),
    ] = None,
) -> None:
    """Consume chat and news, classify, store, produce enriched events, commit."""
    from attnwatch.service import service_when_ready
    from pipeline.health import Health
    from pipeline.metrics import Metrics

    settings = state.settings
    if history is not None:
        settings = settings.replace(alerts={"history": history.value})
    # The drain (shutdown_timeout_s), then the producer and the consumer close, each bounded
    # by io_timeout_s: the watchdog must not cut those closes short.
    stop = stop_on_signals(settings.stream.shutdown_timeout_s + 2 * settings.stream.io_timeout_s)
    metrics = Metrics()
    health = Health(metrics=metrics)
    try:
        if settings.stream.metrics_port:
            # Served before the model loads: /readyz says what is still missing.
            metrics.serve(settings.stream.metrics_port, settings.stream.metrics_host, health)
        connection = settings.kafka.connection()
        # A store or broker that is down at start-up is waited for (not ready on /readyz,
        # retried with capped backoff), so start-up order does not matter.
        with service_when_ready(settings, connection, stop, health=health, metrics=metrics) as svc:
            if svc is None:
                typer.echo("stopped before the store and the broker were reachable")
                return
            if svc.model_watch is not None:
                # SIGHUP: look for a new model now rather than at the next interval.
                watch = svc.model_watch
                signal.signal(signal.SIGHUP, lambda _signum, _frame: watch.request())
            report = svc.runner.run(stop, idle_exit_s=idle_exit)
            if idle_exit is not None and svc.alerting is not None and not stop.is_set():
                # The input is over: evaluate every bucket it holds before exiting.
                svc.alerting.finish()
    except AttnwatchError as exc:
        fail(exc)
    finally:
        metrics.close()
    typer.echo(f"enriched {report.enriched}, dead letters {report.dead_letters}")


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(help="Seconds to run (also DURATION).", envvar="DURATION")
    ] = 120.0,
    rate: Annotated[float, typer.Option(help="Replay messages per second.")] = 40.0,
    count: Annotated[int, typer.Option(help="Messages to replay.")] = 4000,
    shift: Annotated[bool, typer.Option(help="Inject a sentiment shift.")] = True,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the analyst dashboard beside the demo.")
    ] = True,
    hold: Annotated[
        bool | None,
        typer.Option(
            help="Keep the dashboard up after the replay until Ctrl-C "
            "(default: when run from a terminal)."
        ),
    ] = None,
) -> None:
    """Embedded broker + training if needed + run loop + replay + metrics, with a live view."""
    from attnwatch.demo.run import DemoOptions, run_demo

    settings = state.settings
    if not (settings.model.dir / "config.json").is_file():
        console.print(f"no model at {settings.model.dir}: training the default one on seed data")
        from attnwatch.cli.model import train_model
        from models.training.training_args import TrainingArgs

        # The same path and defaults as `attnwatch train` with no options.
        result = train_model(
            TrainingArgs(
                output_dir=settings.model.dir,
                encoder=settings.model.encoder,
                device=settings.model.device,
            )
        )
        console.print(f"trained in {result.seconds:.0f} s; card: {settings.model.dir}/README.md")
        for task, trust in result.trust.items():
            console.print(f"  {task} attention: {trust.verdict} ({trust.reason})")
    stop = stop_on_signals(settings.stream.shutdown_timeout_s)
    try:
        keep = sys.stdin.isatty() if hold is None else hold
        options = DemoOptions(duration, rate, count, shift, dashboard=dashboard, hold=keep)
        run_demo(settings, options, Console(), stop, dashboard=state.dashboard)
    except AttnwatchError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("interrupted")
        raise typer.Exit(130) from None
