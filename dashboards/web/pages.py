"""What each chart page shows, assembled from the query layer and the figure builders.

One function per page returns a plain dataclass the template renders and the JSON
endpoints return; routes only parse parameters and pick the response type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from dashboards.data import aggregates
from dashboards.data.filters import BadParameter, EventFilter, Window
from dashboards.data.model_info import ModelSummary
from dashboards.data.ops_alerts import OpsAlert, OpsAlertTable
from dashboards.data.queries import EventRow, Queries
from dashboards.web import charts
from pipeline.alerting.model import AlertEvent
from pipeline.store.alerts import AlertTable

#: What a feed link of an alert filters on, per scope kind (``overall``: the stream only).
SCOPE_PARAMS = {
    "channel": "channel",
    "intent": "intent",
    "ticker": "ticker",
    "news_source": "source",
}
#: Alert list filters.
ALERT_STATUSES = ("all", "firing", "resolved")
#: Resolved Alertmanager alerts listed on the alerts page.
RECENT_OPS_RESOLVED = 20
#: Headlines on a ticker page.
HEADLINES = 20


@dataclass
class TrendsView:
    """The trends page: figures by id, the window and how it was split."""

    window: Window
    bucket_s: int
    by: str
    figures: dict[str, charts.Figure]
    groups: list[str]
    groups_left_out: int
    episodes: list[aggregates.Episode]
    total: int


def trends(engine: Engine, f: EventFilter, window: Window, by: str) -> TrendsView:
    """Sentiment share, per-group negative share, volume and intent mix over ``window``."""
    if by not in aggregates.GROUPINGS:
        msg = f"unknown grouping {by!r}: use one of {', '.join(aggregates.GROUPINGS)}"
        raise BadParameter(msg)
    bucket = aggregates.bucket_seconds(window)
    counts = aggregates.sentiment_counts(engine, f, window, bucket, by)
    overall = aggregates.overall(counts)
    split = aggregates.by_group(counts, by)
    groups = aggregates.top_groups(split)
    every = {c.group for c in split}
    episodes = aggregates.episodes(engine, window, f.stream)
    what = f.stream or "all streams"
    figures = {
        "share": charts.sentiment_share(overall, window, episodes, f"Sentiment share, {what}"),
        "groups": charts.negative_share_by_group(
            split, groups, window, episodes, f"Negative share by {by}"
        ),
        "volume": charts.volume(overall, window, episodes, "Messages"),
        "intents": charts.intent_mix(
            aggregates.intent_mix(engine, f, window), "Intent mix (customer turns)"
        ),
    }
    total = sum(c.n for c in overall)
    return TrendsView(
        window, bucket, by, figures, groups, len(every) - len(groups), episodes, total
    )


@dataclass
class TickerView:
    """A ticker's page: its sentiment over time and latest headlines."""

    ticker: str
    window: Window
    figures: dict[str, charts.Figure]
    headlines: list[EventRow]
    total: int


def ticker(engine: Engine, queries: Queries, symbol: str, window: Window) -> TickerView:
    """News mentioning ``symbol``: sentiment share and volume, and the newest headlines."""
    f = EventFilter(stream="news", ticker=symbol)
    counts = aggregates.sentiment_counts(engine, f, window, aggregates.bucket_seconds(window))
    episodes = [
        e
        for e in aggregates.episodes(engine, window, "news")
        if e.scope_kind == "overall" or (e.scope_kind == "ticker" and e.scope == symbol)
    ]
    figures = {
        "share": charts.sentiment_share(counts, window, episodes, f"{symbol}: sentiment share"),
        "volume": charts.volume(counts, window, episodes, f"{symbol}: articles"),
    }
    page = queries.feed(
        EventFilter(stream="news", ticker=symbol, since=window.start, until=window.end),
        limit=HEADLINES,
    )
    return TickerView(symbol, window, figures, page.rows, sum(c.n for c in counts))


@dataclass
class ConversationView:
    """A conversation turn by turn, and the customer's sentiment trajectory."""

    conversation_id: str
    turns: list[EventRow]
    figure: charts.Figure | None
    truncated: bool


def conversation(queries: Queries, conversation_id: str, limit: int) -> ConversationView:
    """The turns of a conversation; ``figure`` is ``None`` without customer turns."""
    turns = queries.conversation(conversation_id, limit + 1)
    truncated = len(turns) > limit
    turns = turns[:limit]
    # Numbered over all turns, so the agent's turns show as the gaps between the points.
    customer = [(n, t) for n, t in enumerate(turns, start=1) if t.role == "customer"]
    figure = None
    if customer:
        values = [t.probability("positive") - t.probability("negative") for _, t in customer]
        labels = [t.label("sentiment") or "" for _, t in customer]
        figure = charts.trajectory(
            [n for n, _ in customer],
            [t.event_time for _, t in customer],
            values,
            labels,
            "Customer sentiment by turn",
        )
    return ConversationView(conversation_id, turns, figure, truncated)


@dataclass
class AlertView:
    """One alert episode with its parsed event and links to the messages behind it."""

    row: dict[str, Any]
    event: AlertEvent | None
    feed_url_params: dict[str, str]
    trends_url_params: dict[str, str]
    problems: list[str] = field(default_factory=list)


def feed_params(
    stream: str,
    scope_kind: str,
    scope: str,
    starts_at: datetime,
    ends_at: datetime | None,
    lead: timedelta,
) -> dict[str, str]:
    """Feed filters showing an episode's scope from ``lead`` before it fired to its end."""
    params = {"stream": stream, "since": (starts_at - lead).isoformat()}
    if ends_at is not None:
        params["until"] = ends_at.isoformat()
    if scope_kind in SCOPE_PARAMS:
        params[SCOPE_PARAMS[scope_kind]] = scope
    return params


def alerts(table: AlertTable, status: str, limit: int, lead: timedelta) -> list[AlertView]:
    """Alerts newest first (``status``: all, firing or resolved), with their evidence."""
    if status not in ALERT_STATUSES:
        msg = f"unknown status {status!r}: use one of {', '.join(ALERT_STATUSES)}"
        raise BadParameter(msg)
    rows = table.rows(status=None if status == "all" else status, limit=limit)
    views = []
    for row in rows:
        problems: list[str] = []
        try:
            event: AlertEvent | None = AlertEvent.model_validate(row["payload"])
        except ValidationError:
            event, problems = None, ["the stored alert event could not be read"]
        params = feed_params(
            row["stream"], row["scope_kind"], row["scope"], row["starts_at"], row["ends_at"], lead
        )
        trend = {"stream": row["stream"], "since": (row["starts_at"] - 4 * lead).isoformat()}
        if row["ends_at"] is not None:
            trend["until"] = (row["ends_at"] + 4 * lead).isoformat()
        views.append(AlertView(row, event, params, trend, problems))
    return views


@dataclass
class OpsAlertsView:
    """Alertmanager's operational alerts: those firing, and the recently resolved ones."""

    firing: list[OpsAlert]
    resolved: list[OpsAlert]


def ops_alerts(table: OpsAlertTable, status: str, limit: int) -> OpsAlertsView:
    """Firing alerts (most severe first) and the latest resolved, as ``status`` filters."""
    if status not in ALERT_STATUSES:
        msg = f"unknown status {status!r}: use one of {', '.join(ALERT_STATUSES)}"
        raise BadParameter(msg)
    firing = table.firing(limit) if status != "resolved" else []
    resolved = table.resolved(min(limit, RECENT_OPS_RESOLVED)) if status != "firing" else []
    return OpsAlertsView(firing, resolved)


def confusion_figures(summary: ModelSummary) -> dict[str, charts.Figure]:
    """A heatmap per evaluated task that has a confusion matrix."""
    return {
        ev.task: charts.confusion(ev.labels, ev.confusion, f"{ev.task}: confusion matrix")
        for ev in summary.evaluations
        if ev.confusion
    }
