"""Kafka commands: the embedded broker, topic creation, and the replay producer."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from attnwatch.cli.app import app, fail, state, stop_on_signals
from pipeline.errors import AttnwatchError


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
            ensure_topics(
                running.connection,
                settings.kafka.topics.names(),
                partitions or settings.kafka.partitions,
            )
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
            settings.kafka.connection(),
            settings.kafka.topics.names(),
            partitions or settings.kafka.partitions,
            replication,
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
    from pipeline.demo.scenario import ScenarioOptions, scenario

    settings = state.settings
    try:
        options = ScenarioOptions(
            count=count, shift=(0.4, 0.6) if shift else None, bad_rate=bad_rate
        )
        connection = settings.kafka.connection()
    except (ValueError, AttnwatchError) as exc:
        fail(exc)
    stop = stop_on_signals()
    items = scenario(settings.kafka.topics.chat, settings.kafka.topics.news, options)
    started = time.monotonic()
    sent = replay(connection, items, rate=rate, total=count, stop=stop)
    typer.echo(f"sent {sent} messages in {time.monotonic() - started:.1f} s")
