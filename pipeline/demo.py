"""``attnwatch demo``: the whole monitor on an embedded broker, with a live summary.

Everything runs in one process: the Tansu broker (a child process), the run
loop and the replay producer (threads), the metrics server, and a terminal
summary read back from the analyst store, the way an analyst would read it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from consumers.broker import EmbeddedBroker
from consumers.kafka_config import KafkaConnection
from consumers.replay import replay
from consumers.topics import ensure_topics
from pipeline.config import Settings
from pipeline.metrics import Metrics
from pipeline.runner import RunReport
from pipeline.scenario import ScenarioOptions, scenario
from pipeline.service import load_classifier, service
from pipeline.store import open_store, read_events

log = logging.getLogger(__name__)

#: A shift episode opens when a channel's recent negative share exceeds its baseline
#: (everything before the recent window) by SHIFT_OPEN and closes below SHIFT_CLOSE.
#: The demo's display only; event-time alerting with statistics is a later issue.
SHIFT_OPEN = 0.2
SHIFT_CLOSE = 0.1
SHIFT_WINDOW = timedelta(seconds=20)
SHIFT_MIN_RECENT = 15
SHIFT_MIN_BASELINE = 40


@dataclass(frozen=True)
class DemoOptions:
    """How long and how fast the demo runs."""

    duration_s: float = 120.0
    rate: float = 40.0
    count: int = 4000
    shift: bool = True


@contextlib.contextmanager
def _cluster(settings: Settings, log_dir: Path) -> Iterator[KafkaConnection]:
    if settings.bootstrap_servers:
        yield settings.kafka()
        return
    with EmbeddedBroker(log_file=log_dir / "tansu.log") as broker:
        yield broker.connection


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> RunReport:
    """Run the demo until ``duration_s`` passes, the stream is drained, or Ctrl-C."""
    log_dir = Path("var/logs")
    classifier = load_classifier(settings)
    started = datetime.now(UTC)
    with _cluster(settings, log_dir) as connection:
        ensure_topics(connection, settings.topics(), settings.partitions)
        metrics = Metrics()
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        console.print(
            f"[bold]broker[/] {connection.bootstrap_servers}   [bold]store[/] "
            f"{settings.store_url}   [bold]model[/] {classifier.info.name}@"
            f"{classifier.info.version}"
        )
        if settings.metrics_port:
            console.print(
                f"[bold]metrics[/] http://{settings.metrics_host}:{settings.metrics_port}/metrics"
            )
        stop = threading.Event()
        result: dict[str, RunReport] = {}
        errors: list[BaseException] = []
        with service(settings, connection, classifier=classifier, metrics=metrics) as svc:

            def loop() -> None:
                try:
                    result["report"] = svc.runner.run(stop)
                except BaseException as exc:
                    errors.append(exc)
                    stop.set()
                    raise

            items = scenario(
                settings.topic_chat,
                settings.topic_news,
                ScenarioOptions(count=options.count, shift=(0.4, 0.6) if options.shift else None),
            )
            sent = {"n": 0}
            progress = ReplayProgress(options.count)

            def produce() -> None:
                sent["n"] = replay(
                    connection,
                    items,
                    rate=options.rate,
                    total=options.count,
                    stop=stop,
                    progress=False,
                    on_sent=progress.update,
                )

            threads = [
                threading.Thread(target=loop, name="run-loop", daemon=True),
                threading.Thread(target=produce, name="replay", daemon=True),
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + options.duration_s
            shifts_seen = ShiftLog()
            try:
                with Live(console=console, refresh_per_second=1, transient=False) as live:
                    while time.monotonic() < deadline and not stop.is_set():
                        live.update(_summary(settings, started, options, shifts_seen, progress))
                        handled = svc.runner.totals.enriched + svc.runner.totals.dead_letters
                        if not threads[1].is_alive() and handled >= sent["n"]:
                            break
                        stop.wait(1.0)
                    live.update(_summary(settings, started, options, shifts_seen, progress))
            except KeyboardInterrupt:
                console.print("stopping (Ctrl-C)")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
        if errors:
            raise errors[0]
    report = result.get("report", RunReport())
    elapsed = (datetime.now(UTC) - started).total_seconds()
    console.print()
    console.print(
        f"[bold]done[/]: {report.enriched} enriched, {report.dead_letters} dead letters "
        f"in {elapsed:.1f} s ({report.enriched / max(elapsed, 1e-9):.1f} msg/s; replay rate "
        f"{options.rate:g}/s). Read them with pandas: "
        f"`from pipeline.store import read_events; read_events('{settings.store_url}')`"
    )
    return report


@dataclass
class ShiftLog:
    """Shift episodes per channel: one entry when a shift starts, none while it lasts."""

    active: set[str] = field(default_factory=set)
    episodes: list[tuple[str, datetime, float, float]] = field(default_factory=list)

    def observe(self, channel: str, recent: float, base: float, n_recent: int, n_base: int) -> bool:
        """Update ``channel``'s episode state (with hysteresis); True while shifted."""
        if n_recent < SHIFT_MIN_RECENT or n_base < SHIFT_MIN_BASELINE:
            return channel in self.active
        if channel not in self.active and recent - base > SHIFT_OPEN:
            self.active.add(channel)
            self.episodes.append((channel, datetime.now(UTC), recent, base))
        elif channel in self.active and recent - base < SHIFT_CLOSE:
            self.active.discard(channel)
        return channel in self.active


class ReplayProgress:
    """How much of the stream the replay thread has sent (drawn in the live view)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def update(self, sent: int) -> None:
        """Record the running count."""
        self.sent = sent


def _summary(
    settings: Settings,
    started: datetime,
    options: DemoOptions,
    shifts_seen: ShiftLog,
    progress: ReplayProgress,
) -> Group:
    with open_store(settings.store_url) as store:
        events = read_events(store, since=started)
    header = Table.grid(padding=(0, 2))
    header.add_row(
        f"replayed {progress.sent}/{progress.total} at {options.rate:g} msg/s",
        ProgressBar(total=max(1, progress.total), completed=progress.sent, width=30),
        f"[bold]{len(events)}[/] enriched since {started:%H:%M:%S} UTC",
    )
    if events.empty:
        return Group(header, "waiting for the first results...")
    customer = events[(events["kind"] == "chat") & (events["role"] == "customer")]
    intents = Table(title="intents (customer turns)", show_edge=False)
    for column in ("intent", "n", "negative share"):
        intents.add_column(column)
    for intent, group in customer.groupby("intent_label"):
        share = (group["sentiment_label"] == "negative").mean()
        intents.add_row(str(intent), str(len(group)), f"{share:.0%}")
    shifts = Table(title="negative share by channel (last 20 s vs. before)", show_edge=False)
    for column in ("channel", "recent", "baseline", "status"):
        shifts.add_column(column)
    now = pd.Timestamp(datetime.now(UTC))
    for channel, group in customer.groupby("channel"):
        recent = group[group["event_time"] >= now - SHIFT_WINDOW]
        base = group[group["event_time"] < now - SHIFT_WINDOW]
        recent_share = (recent["sentiment_label"] == "negative").mean() if len(recent) else 0.0
        base_share = (base["sentiment_label"] == "negative").mean() if len(base) else recent_share
        shifted = shifts_seen.observe(
            str(channel), recent_share, base_share, len(recent), len(base)
        )
        status = "[bold red]SHIFT[/]" if shifted else "ok"
        shifts.add_row(
            str(channel), f"{recent_share:.0%} ({len(recent)})", f"{base_share:.0%}", status
        )
    latest = Table(title="latest messages: label and top attention words", show_edge=False)
    for column in ("kind", "intent", "sentiment", "top words"):
        latest.add_column(column)
    for _, row in events.head(6).iterrows():
        words = (
            row["intent_attention"]
            if isinstance(row["intent_attention"], list)
            else (row["sentiment_attention"])
        )
        top = sorted(words, key=lambda w: -w["weight"])[:3]
        latest.add_row(
            str(row["kind"]),
            "-" if pd.isna(row["intent_label"]) else str(row["intent_label"]),
            f"{row['sentiment_label']} {row['sentiment_score']:.2f}",
            ", ".join(f"{w['word']} ({w['weight']:.2f})" for w in top),
        )
    alerts = [
        f"[bold red]sentiment shift[/] on channel {channel} at {when:%H:%M:%S}: negative share "
        f"{recent:.0%} in the last {SHIFT_WINDOW.seconds} s vs {base:.0%} before"
        for channel, when, recent, base in shifts_seen.episodes[-5:]
    ]
    return Group(header, intents, shifts, latest, *alerts)
