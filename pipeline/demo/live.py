"""The demo's live terminal view: intents, negative share per channel, latest messages.

Read back from the analyst store, the way an analyst would read it.  The shift
flag here is the demo's display only; event-time alerting is ``pipeline.alerting``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table

from pipeline.config import Settings
from pipeline.store import open_store, read_events

if TYPE_CHECKING:
    from pipeline.demo.run import DemoOptions

#: A shift episode opens when a channel's recent negative share exceeds its baseline
#: (everything before the recent window) by SHIFT_OPEN and closes below SHIFT_CLOSE.
#: The demo's display only; event-time alerting with statistics is a later issue.
SHIFT_OPEN = 0.2
SHIFT_CLOSE = 0.1
SHIFT_WINDOW = timedelta(seconds=20)
SHIFT_MIN_RECENT = 15
SHIFT_MIN_BASELINE = 40


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


def summary(
    settings: Settings,
    started: datetime,
    options: DemoOptions,
    shifts_seen: ShiftLog,
    progress: ReplayProgress,
) -> Group:
    """The live view: header, intents, shift table, latest messages, recent alerts."""
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
