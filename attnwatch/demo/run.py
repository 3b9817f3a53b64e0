"""``attnwatch demo``: the whole monitor on an embedded broker, with a live summary.

Everything runs in one process: the Tansu broker (a child process), the run
loop and the replay producer (threads), the metrics server, and a terminal
summary read back from the analyst store, the way an analyst would read it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.live import Live

from attnwatch.demo.dashboard import DashboardServer
from attnwatch.demo.live import ReplayProgress, summary
from attnwatch.service import load_classifier, service
from attnwatch.settings import Settings
from consumers.broker import EmbeddedBroker
from consumers.connection import KafkaConnection
from consumers.replay import replay
from consumers.topics import ensure_topics
from pipeline.config_compat import is_set
from pipeline.demo.day import DAY_S, SimulatedDay
from pipeline.demo.scenario import ScenarioOptions, scenario
from pipeline.health import Health
from pipeline.metrics import Metrics
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable
from pipeline.store.engine import masked_url
from pipeline.stream.runner import RunReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    """How long and how fast the demo runs."""

    duration_s: float = 120.0
    rate: float = 40.0
    count: int = 4000
    shift: bool = True
    #: Serve the analyst dashboard beside the demo.
    dashboard: bool = True
    #: Keep the dashboard up after the replay until Ctrl-C (default: when interactive).
    hold: bool = False


#: Where in the replay the shift is injected (fractions of the stream).
SHIFT = (0.4, 0.65)
#: Share of the shift's conversations that are angry card-declined chats on the app channel.
SHIFT_STRENGTH = 0.9


#: The demo's alert windows, in event time over its simulated day (see ``demo_settings``).
DEMO_WINDOWS: dict[str, int] = {
    "alert_bucket_s": 1800,
    "alert_current_s": 4 * 3600,
    "alert_lateness_s": 1800,
    "alert_baseline_s": DAY_S,
}
#: Where each run's own store goes when no store is configured (see ``demo_settings``).
DEMO_STORE_DIR = Path("var/demo")


def replay_seconds(options: DemoOptions) -> float:
    """How long the replay takes at its rate (wall clock)."""
    return options.count / max(options.rate, 1e-9)


def demo_settings(settings: Settings, started: datetime) -> Settings:
    """``settings`` for one demo run: windows over its simulated day, and its own store.

    The replay spreads event time over a day (:mod:`pipeline.demo.day`), so the windows
    are hours of event time: 30-minute buckets, a 4-hour current window against the
    24 hours before it, the production test and thresholds.  The shift (40% to 65% of
    the day) fires and has resolved before the day ends.  Evaluations run every half
    second of wall time, a few per bucket however fast the day is replayed.

    Each run writes a store of its own, ``var/demo/<start time>.db``, unless a store was
    configured: two runs' days overlap in event time (each is the 24 hours before it
    ends), so in one store the second run's day would sit on top of the first in Trends
    and behind the first run's alert watermark.  The ids are fresh on every run as well
    (:class:`~pipeline.demo.scenario.ScenarioOptions`), so a configured store shared by
    runs still shows each run live.  Settings given explicitly (flags, environment,
    config file) are kept.
    """
    scaled: dict[str, object] = {
        **DEMO_WINDOWS,
        "alert_interval_s": 0.5,
        "alert_min_baseline": 100,
        # The day's event times trail the wall clock by up to a day by construction; that
        # is the simulation, not a backlog, so its alerts are not marked late.
        "alert_late_after_s": 2 * DAY_S,
        "store_url": f"sqlite:///{DEMO_STORE_DIR / started.strftime('%Y%m%dT%H%M%S_%fZ')}.db",
    }
    return settings.replace(**{k: v for k, v in scaled.items() if not is_set(settings, k)})


def _hold(console: Console, url: str) -> None:
    """Keep the dashboard up after the replay until Ctrl-C or SIGTERM."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # The drain handlers (``stop_on_signals``) exit at once on a second signal, which
    # would cut the dashboard thread short; here a signal just ends the wait.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    console.print(f"replay done; the dashboard stays up at {url}: Ctrl-C to stop")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopping the dashboard")


def _firing(settings: Settings, since: datetime) -> bool:
    with open_store(settings.store_url) as store:
        return bool(AlertTable(store.engine).rows(status="firing", since=since, limit=1))


@contextlib.contextmanager
def _cluster(settings: Settings, log_dir: Path) -> Iterator[KafkaConnection]:
    if settings.bootstrap_servers:
        yield settings.kafka()
        return
    with EmbeddedBroker(log_file=log_dir / "tansu.log") as broker:
        yield broker.connection


def run_demo(
    settings: Settings,
    options: DemoOptions,
    console: Console,
    stop: threading.Event | None = None,
    dashboard: DashboardServer | None = None,
) -> RunReport:
    """Run the demo until ``duration_s`` passes, the stream is drained, or ``stop`` is set.

    ``dashboard`` serves the analyst dashboard beside the run loop (given by the
    composition root, which may import ``dashboards``); ``None``: no dashboard.

    ``stop`` is set by SIGTERM/SIGINT (see ``attnwatch.cli.app.stop_on_signals``): the run
    loop then drains its batch and commits before the broker goes away.
    """
    started = datetime.now(UTC)
    settings = demo_settings(settings, started)
    # The day ends when the replay should: no event time lies in the future.
    day = SimulatedDay.ending(started + timedelta(seconds=replay_seconds(options)))
    log_dir = Path("var/logs")
    classifier = load_classifier(settings)
    with _cluster(settings, log_dir) as connection:
        ensure_topics(connection, settings.topics(), settings.partitions)
        metrics = Metrics()
        health = Health(metrics=metrics)
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host, health)
        console.print(
            f"[bold]broker[/] {connection.bootstrap_servers}   [bold]store[/] "
            f"{masked_url(settings.store_url)}   [bold]model[/] {classifier.info.name}@"
            f"{classifier.info.version}"
        )
        replay_s = replay_seconds(options)
        console.print(
            f"[bold]day[/] event time {day.start:%Y-%m-%d %H:%M} to {day.end:%Y-%m-%d %H:%M} UTC, "
            f"replayed in {replay_s:.0f} s ({day.speed(replay_s):.0f}x)"
        )
        if settings.metrics_port:
            console.print(
                f"[bold]metrics[/] http://{settings.metrics_host}:{settings.metrics_port}/metrics"
            )
        stop = stop if stop is not None else threading.Event()
        result: dict[str, RunReport] = {}
        errors: list[BaseException] = []
        with open_store(settings.store_url):
            pass  # the tables exist before the dashboard opens the store
        board = (
            dashboard(settings.dashboard, settings.store, settings.model)
            if options.dashboard and dashboard is not None
            else contextlib.nullcontext(None)
        )
        with (
            board as dashboard_url,
            service(
                settings, connection, classifier=classifier, metrics=metrics, health=health
            ) as svc,
        ):
            if options.dashboard and dashboard is not None:
                console.print(
                    f"[bold]dashboard[/] {dashboard_url}"
                    if dashboard_url
                    else "[yellow]dashboard did not start[/]: see the log"
                )

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
                ScenarioOptions(
                    count=options.count,
                    shift=SHIFT if options.shift else None,
                    shift_strength=SHIFT_STRENGTH,
                ),
                day=day,
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
            try:
                with Live(console=console, refresh_per_second=1, transient=False) as live:
                    while time.monotonic() < deadline and not stop.is_set():
                        live.update(summary(settings, started, options, progress, day))
                        totals = svc.runner.totals
                        # Skipped (already stored) records are handled too: without them a
                        # run sharing a store with an earlier one waited out its duration.
                        handled = totals.enriched + totals.dead_letters + totals.skipped
                        drained = not threads[1].is_alive() and handled >= sent["n"]
                        # An episode still open when the stream ends is shown until it
                        # resolves (within ``duration_s``), so the demo shows both ends.
                        if drained and not _firing(settings, started):
                            break
                        stop.wait(1.0)
                    live.update(summary(settings, started, options, progress, day))
            except KeyboardInterrupt:
                console.print("stopping (Ctrl-C)")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
            if options.hold and dashboard_url:
                _hold(console, dashboard_url)
        if errors:
            raise errors[0]
    report = result.get("report", RunReport())
    elapsed = (datetime.now(UTC) - started).total_seconds()
    console.print()
    # Records skipped as already stored only happen when a configured store is shared with
    # an earlier run: a fresh embedded broker numbers offsets from 0 again, so a malformed
    # event can land on a position that already holds an earlier run's dead letter.
    skipped = f", {report.skipped} already stored" if report.skipped else ""
    console.print(
        f"[bold]done[/]: {report.enriched} enriched, {report.dead_letters} dead letters"
        f"{skipped} in {elapsed:.1f} s ({report.enriched / max(elapsed, 1e-9):.1f} msg/s; "
        f"replay rate {options.rate:g}/s). Read them with pandas: "
        f"`from pipeline.store import read_events; read_events('{masked_url(settings.store_url)}')`"
    )
    return report
