"""The ``attnwatch`` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline.config import Settings, load_settings, settings_markdown
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
        )
    except AttnwatchError as exc:
        _fail(exc)
    configure_logging(state.settings.log_level, state.settings.log_format)


def _fail(exc: BaseException) -> None:
    console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


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
    stop = _stop_on_signals()
    try:
        with EmbeddedBroker(port=port) as running:
            ensure_topics(running.connection, settings.topics(), partitions or settings.partitions)
            typer.echo(f"broker ready: --bootstrap-servers {running.bootstrap_servers}")
            while not stop.wait(1.0):
                if not running.running:
                    _fail(BrokerError("the broker process exited"))
    except BrokerError as exc:
        _fail(exc)


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
        _fail(exc)
    typer.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@app.command()
def train(
    data: Annotated[
        Path | None,
        typer.Option(help="CSV/JSONL with text and intent and/or sentiment; default: seed data."),
    ] = None,
    test_data: Annotated[
        Path | None, typer.Option(help="Held-out CSV/JSONL to report on (with --data).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Model directory; default model_dir.")] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Hugging Face id or path; default offline MiniLM.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    learning_rate: Annotated[float, typer.Option()] = 8e-5,
    max_length: Annotated[int, typer.Option(min=8, max=512)] = 128,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str, typer.Option(help="Model name recorded with every prediction.")] = (
        "attnwatch-default"
    ),
) -> None:
    """Train the attention classifier and save it as a model directory."""
    from models.data import load_labelled, seed_examples
    from models.seed import data_hash
    from models.trainer import Trainer
    from models.training_args import TrainingArgs

    settings = state.settings
    if data is None:
        train_set, test_set, digest = seed_examples()
    else:
        try:
            train_set = load_labelled(data)
            test_set = load_labelled(test_data) if test_data else []
        except (OSError, ValueError) as exc:
            _fail(exc)
        digest = data_hash(data)
    try:
        args = TrainingArgs(
            output_dir=output or settings.model_dir,
            encoder=encoder or settings.encoder,
            name=name,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_length=max_length,
            seed=seed,
            device=settings.device,
        )
    except ValueError as exc:
        _fail(exc)
    result = Trainer(args).train(train_set, test_set, digest)
    typer.echo(
        f"saved {result.info.name}@{result.info.version} to {result.directory} "
        f"in {result.seconds:.0f} s"
    )
    for task, groups in result.metrics.items():
        for group, m in groups.items():
            typer.echo(
                f"  {task:<9} {group:<6} accuracy {m.accuracy:.3f}  macro-F1 "
                f"{m.macro_f1:.3f}  (n={m.n})"
            )


@app.command()
def classify(
    texts: Annotated[list[str], typer.Argument(help="Text(s) to classify.")],
    top_words: Annotated[int, typer.Option(min=1, help="Words shown per task.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Classify text with the saved model and show the words its attention chose."""
    from pipeline.service import load_classifier

    try:
        classifier = load_classifier(state.settings)
    except AttnwatchError as exc:
        _fail(exc)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "text": text,
                        **{
                            task: {
                                "label": p.label,
                                "score": round(p.score, 4),
                                "top": [{"label": lb, "score": round(s, 4)} for lb, s in p.top],
                                "attention": [
                                    {"word": w.word, "weight": round(w.weight, 4)} for w in p.words
                                ],
                            }
                            for task, p in prediction.items()
                        },
                    }
                )
            )
            continue
        typer.echo(text)
        for task, p in prediction.items():
            words = sorted(p.words, key=lambda w: -w.weight)[:top_words]
            shown = ", ".join(f"{w.word} {w.weight:.2f}" for w in words)
            typer.echo(f"  {task:<9} {p.label} ({p.score:.2f})   words: {shown}")


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
        _fail(exc)
    stop = _stop_on_signals()
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
    stop = _stop_on_signals()
    try:
        connection = settings.kafka()
        with service(settings, connection) as svc:
            if settings.metrics_port:
                svc.metrics.serve(settings.metrics_port, settings.metrics_host)
            report = svc.runner.run(stop, idle_exit_s=idle_exit)
    except AttnwatchError as exc:
        _fail(exc)
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
        _fail(exc)
    except KeyboardInterrupt:
        console.print("interrupted")
        raise typer.Exit(130) from None


if __name__ == "__main__":
    app()
