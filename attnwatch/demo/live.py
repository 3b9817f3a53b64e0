"""The demo's live terminal view: intents, negative share per channel, latest messages, alerts.

Read back from the analyst store, the way an analyst would read it: events with
``read_events``, alert episodes (raised by ``pipeline.alerting``'s evaluator, which
runs beside the run loop) from the ``alerts`` table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd
from rich.console import Group
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from attnwatch.settings import Settings
from pipeline.demo.day import SimulatedDay
from pipeline.store import open_store, read_events
from pipeline.store.alerts import AlertTable


class Pace(Protocol):
    """What the live view reads of the demo's options (``attnwatch.demo.run.DemoOptions``).

    A protocol, not an import: the run module imports this one to draw the view.
    """

    @property
    def rate(self) -> float:
        """Messages per second of the replay."""


class ReplayProgress:
    """How much of the stream the replay thread has sent (drawn in the live view)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def update(self, sent: int) -> None:
        """Record the running count."""
        self.sent = sent


def summary(
    settings: Settings,
    started: datetime,
    options: Pace,
    progress: ReplayProgress,
    day: SimulatedDay,
) -> Group:
    """The live view: header, intents, channels, latest messages, this run's alerts.

    Events are this run's simulated ``day`` (event time); alerts those this run recorded
    (processing time since ``started``).  The channel table's "recent" column is the
    alert's current window (``alert_current_s`` of event time) before the replay's
    position in the day.
    """
    with open_store(settings.store_url) as store:
        events = read_events(store, since=day.start, until=day.end + timedelta(seconds=1))
        alerts = AlertTable(store.engine).rows(since=started, limit=5)
    now = day.at(progress.sent / max(1, progress.total))
    header = Table.grid(padding=(0, 2))
    header.add_row(
        f"replayed {progress.sent}/{progress.total} at {options.rate:g} msg/s",
        ProgressBar(total=max(1, progress.total), completed=progress.sent, width=30),
        f"[bold]{len(events)}[/] enriched; simulated day at {now:%H:%M} "
        f"({day.start:%m-%d %H:%M} to {day.end:%m-%d %H:%M} UTC, event time)",
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
    firing = {(a["scope_kind"], a["scope"]) for a in alerts if a["status"] == "firing"} | {
        (r["scope_kind"], r["scope"])
        for a in alerts
        if a["status"] == "firing"
        for r in a["payload"].get("related", [])
    }
    recent_span = timedelta(seconds=settings.alert_current_s)
    channels = Table(
        title=f"negative share by channel (last {_span(recent_span)} of the day vs before)",
        show_edge=False,
    )
    for column in ("channel", "recent", "before", "alert"):
        channels.add_column(column)
    cut = pd.Timestamp(now - recent_span)
    for channel, group in customer.groupby("channel"):
        recent = group[group["event_time"] >= cut]
        base = group[group["event_time"] < cut]
        recent_share = (recent["sentiment_label"] == "negative").mean() if len(recent) else 0.0
        base_share = (base["sentiment_label"] == "negative").mean() if len(base) else 0.0
        status = "[bold red]FIRING[/]" if ("channel", str(channel)) in firing else "-"
        channels.add_row(
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
    return Group(header, intents, channels, latest, *alert_lines(alerts))


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def alert_lines(alerts: list[dict[str, Any]]) -> list[str]:
    """Each alert of this run (newest first) with its evidence, as rich markup."""
    if not alerts:
        return ["[dim]alerts: none (the evaluator compares event-time windows per scope)[/]"]
    lines = ["[bold]alerts[/]"]
    for row in alerts:
        event = row["payload"]
        status = event["status"]
        mark = "[bold red]FIRING[/]" if status == "firing" else "[green]RESOLVED[/]"
        ends = event.get("ends_at")
        span = f"since {event['starts_at'][11:19]}" + (f", ended {ends[11:19]}" if ends else "")
        lines.append(f"{mark} {escape(event['summary'])} (z {event['statistic']:.1f}, {span} UTC)")
        related = ", ".join(
            f"{r['scope_kind']} {r['scope']}".strip() for r in event.get("related", [])
        )
        if related:
            lines.append(f"    also shifted (same episode): {escape(related)}")
        rising = ", ".join(
            f"{r['word']} {r['baseline']:.1%}->{r['current']:.1%}"
            + (f" (z {r['z']:.1f})" if r.get("z") is not None else "")
            for r in event.get("rising_words", [])[:5]
        )
        if rising:
            lines.append(f"    rising words: {escape(rising)}")
        for item in event.get("evidence", [])[:3]:
            words = ", ".join(item["top_words"])
            lines.append(f"    - {escape(item['text_excerpt'][:90])!s}  [{escape(words)}]")
    return lines
