"""The ``attnwatch`` command line: pipeline commands (model commands live in cli_model)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console

from pipeline import cli_model  # noqa: F401  (registers train, classify, evaluate, ...)
from pipeline.cli_app import app, console, fail, state, stop_on_signals
from pipeline.config import settings_markdown
from pipeline.errors import AttnwatchError

__all__ = ["app"]


@app.command()
def config(
    markdown: Annotated[bool, typer.Option(help="Print the reference table instead.")] = False,
) -> None:
    """Show the effective configuration (secrets masked)."""
    if markdown:
        typer.echo(settings_markdown())
        return
    values = state.settings.model_dump(mode="json")
    if values.get("sasl_password"):
        values["sasl_password"] = "***"  # noqa: S105 - a mask, not a password
    typer.echo(json.dumps(values, indent=2))


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Loopback port; 0 picks a free one.")] = 9092,
    partitions: Annotated[int | None, typer.Option(help="Partitions per topic.")] = None,
) -> None:
    """Start the embedded Tansu broker, create the topics, and wait for Ctrl-C."""
    from consumers.broker import BrokerError, EmbeddedBroker
    from consumers.topics import ensure_topics

    settings = state.settings
    stop = stop_on_signals()
    try:
        with EmbeddedBroker(port=port) as running:
            ensure_topics(running.connection, settings.topics(), partitions or settings.partitions)
            typer.echo(f"broker ready: --bootstrap-servers {running.bootstrap_servers}")
            while not stop.wait(1.0):
                if not running.running:
                    fail(BrokerError("the broker process exited"))
    except BrokerError as exc:
        fail(exc)


@app.command()
def topics(
    partitions: Annotated[int | None, typer.Option(help="Partitions per new topic.")] = None,
    replication: Annotated[int, typer.Option(help="Replication factor of new topics.")] = 1,
) -> None:
    """Create attnwatch's topics on the cluster given by --bootstrap-servers."""
    from consumers.topics import ensure_topics

    settings = state.settings
    try:
        created = ensure_topics(
            settings.kafka(), settings.topics(), partitions or settings.partitions, replication
        )
    except AttnwatchError as exc:
        fail(exc)
    typer.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@app.command("replay")
def replay_command(
    rate: Annotated[float, typer.Option(help="Messages per second; 0 = as fast as possible.")] = (
        20.0
    ),
    count: Annotated[int, typer.Option(min=0, help="Messages to send.")] = 1000,
    shift: Annotated[bool, typer.Option(help="Inject a negative card-declined burst.")] = True,
    bad_rate: Annotated[float, typer.Option(help="Share of malformed events.")] = 0.01,
) -> None:
    """Stream the seed data to Kafka as conversations and a news feed."""
    from consumers.replay import replay
    from pipeline.scenario import ScenarioOptions, scenario

    settings = state.settings
    try:
        options = ScenarioOptions(
            count=count, shift=(0.4, 0.6) if shift else None, bad_rate=bad_rate
        )
        connection = settings.kafka()
    except (ValueError, AttnwatchError) as exc:
        fail(exc)
    stop = stop_on_signals()
    items = scenario(settings.topic_chat, settings.topic_news, options)
    started = time.monotonic()
    sent = replay(connection, items, rate=rate, total=count, stop=stop)
    typer.echo(f"sent {sent} messages in {time.monotonic() - started:.1f} s")


@app.command()
def run(
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many idle seconds (batch jobs).")
    ] = None,
) -> None:
    """Consume chat and news, classify, store, produce enriched events, commit."""
    from pipeline.service import service

    settings = state.settings
    stop = stop_on_signals()
    try:
        connection = settings.kafka()
        with service(settings, connection) as svc:
            if settings.metrics_port:
                svc.metrics.serve(settings.metrics_port, settings.metrics_host)
            report = svc.runner.run(stop, idle_exit_s=idle_exit)
    except AttnwatchError as exc:
        fail(exc)
    typer.echo(f"enriched {report.enriched}, dead letters {report.dead_letters}")


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(help="Seconds to run (also DURATION).", envvar="DURATION")
    ] = 120.0,
    rate: Annotated[float, typer.Option(help="Replay messages per second.")] = 40.0,
    count: Annotated[int, typer.Option(help="Messages to replay.")] = 4000,
    shift: Annotated[bool, typer.Option(help="Inject a sentiment shift.")] = True,
) -> None:
    """Embedded broker + training if needed + run loop + replay + metrics, with a live view."""
    from pipeline.demo import DemoOptions, run_demo

    settings = state.settings
    if not (settings.model_dir / "config.json").is_file():
        console.print(f"no model at {settings.model_dir}: training the default one on seed data")
        from models.data import seed_examples
        from models.trainer import Trainer
        from models.training_args import TrainingArgs

        train_set, test_set, digest = seed_examples()
        result = Trainer(
            TrainingArgs(
                output_dir=settings.model_dir, encoder=settings.encoder, device=settings.device
            )
        ).train(train_set, test_set, digest)
        console.print(f"trained in {result.seconds:.0f} s; card: {settings.model_dir}/README.md")
    try:
        run_demo(settings, DemoOptions(duration, rate, count, shift), Console())
    except AttnwatchError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("interrupted")
        raise typer.Exit(130) from None


if __name__ == "__main__":
    app()
