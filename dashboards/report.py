"""A self-contained HTML summary of a time window (``attnwatch report``), to save or mail.

One document: counts for the window, the trend charts, the alert episodes with their
evidence and rising words, and the most negative messages with their words shaded by
attention.  Figures come from :mod:`dashboards.web.charts` over :mod:`dashboards.data.aggregates`
(the same counts as the trends page); plotly.js is embedded once, from the plotly wheel,
and draws every figure from its inline JSON.  The stylesheet is the dashboard's own,
inlined.  Nothing in the file points outside it, and its Content-Security-Policy forbids
the browser to fetch anything, so it reads the same offline, from an attachment or a share.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from dashboards.data import aggregates
from dashboards.data.corrections import CorrectionTable
from dashboards.data.filters import EventFilter, Window
from dashboards.data.queries import EventRow, Queries, conditions
from dashboards.web import charts, views
from pipeline.alerting.model import AlertEvent
from pipeline.store.alerts import AlertTable
from pipeline.store.engine import store_errors
from pipeline.store.tables import dead_letters_table, events_table
from pipeline.store.writes import Store

#: Most negative messages listed.
MOST_NEGATIVE = 10
#: Channels that get their own sentiment-share chart.
CHANNEL_CHARTS = 4
#: Rows of the per-channel and per-ticker tables.
TABLE_ROWS = 20
#: What the browser may load: inline scripts and styles, ``data:`` images and fonts
#: (plotly's download button makes a ``data:`` PNG), nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
)
TEMPLATE = "report.html"


@dataclass(frozen=True)
class Chart:
    """A figure and the caption that says what it shows (also its accessible name)."""

    id: str
    figure: charts.Figure
    caption: str


@dataclass(frozen=True)
class GroupShare:
    """A channel's or ticker's messages in the window and how many were negative."""

    name: str
    n: int
    negative: int

    @property
    def share(self) -> float:
        """The negative share (0 without messages)."""
        return self.negative / self.n if self.n else 0.0


@dataclass(frozen=True)
class AlertSummary:
    """An alert episode of the window and its stored event (``None``: unreadable)."""

    episode: aggregates.Episode
    severity: str | None
    statistic: float | None
    event: AlertEvent | None
    problems: list[str]


@dataclass
class ReportView:
    """Everything the report shows, ready for the template."""

    title: str
    window: Window
    generated: datetime
    bucket_s: int
    chats: int
    news: int
    dead_letters: dict[str, int]
    volume: list[Chart]
    sentiment: list[Chart]
    negative: list[Chart]
    intents: list[Chart]
    channels: list[GroupShare]
    tickers: list[GroupShare]
    intent_counts: list[tuple[str, int]]
    alerts: list[AlertSummary]
    negatives: list[EventRow]

    @property
    def total(self) -> int:
        """Messages in the window, both streams."""
        return self.chats + self.news

    @property
    def charts(self) -> list[Chart]:
        """Every chart, in page order."""
        return [*self.volume, *self.sentiment, *self.negative, *self.intents]


def group_shares(counts: Sequence[aggregates.Count], n: int = TABLE_ROWS) -> list[GroupShare]:
    """The ``n`` largest groups of ``counts`` (split by :func:`aggregates.by_group`)."""
    totals: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    for c in counts:
        if c.group is not None:
            totals[c.group] += c.n
            if c.label == "negative":
                negative[c.group] += c.n
    return [GroupShare(g, totals[g], negative[g]) for g in aggregates.top_groups(list(counts), n)]


def dead_letter_counts(engine: Engine, window: Window) -> dict[str, int]:
    """Dead letters received in ``window`` per reason (one small ``GROUP BY``)."""
    t = dead_letters_table
    stmt = (
        sa.select(t.c.reason, sa.func.count())
        .where(t.c.received_time >= window.start, t.c.received_time < window.end)
        .group_by(t.c.reason)
        .order_by(t.c.reason)
    )
    with store_errors("counting dead letters"), engine.connect() as conn:
        return {str(reason): int(n) for reason, n in conn.execute(stmt)}


def most_negative(queries: Queries, window: Window, n: int = MOST_NEGATIVE) -> list[EventRow]:
    """The ``n`` messages of ``window`` labelled negative with the highest score.

    Ties go newest first.  The ids come from one query over the window's negatives
    (``ix_dash_events_sentiment_time``); the rows, corrections attached, from
    :meth:`Queries.event`.
    """
    t = events_table
    f = EventFilter(sentiment="negative", since=window.start, until=window.end)
    stmt = (
        sa.select(t.c.input_id)
        .where(*conditions(f))
        .order_by(t.c.sentiment_score.desc(), t.c.event_time.desc(), t.c.input_id)
        .limit(n)
    )
    with store_errors("reading the most negative messages"), queries.store.engine.connect() as c:
        ids = [str(i) for i in c.scalars(stmt)]
    return [row for row in map(queries.event, ids) if row is not None]


def _alert(table: AlertTable, episode: aggregates.Episode) -> AlertSummary:
    row = table.get(episode.alert_id)
    if row is None:  # deleted by retention between the two reads
        return AlertSummary(episode, None, None, None, ["the alert is no longer stored"])
    try:
        event: AlertEvent | None = AlertEvent.model_validate(row["payload"])
    except ValidationError:
        return AlertSummary(
            episode,
            row["severity"],
            row["statistic"],
            None,
            ["the stored alert event could not be read"],
        )
    return AlertSummary(episode, row["severity"], row["statistic"], event, [])


def _where(e: aggregates.Episode) -> str:
    return e.stream if e.scope_kind == "overall" else f"{e.scope_kind} {e.scope}"


def report_view(engine: Engine, window: Window, *, title: str, generated: datetime) -> ReportView:
    """Read what the report shows for ``window``: a handful of grouped queries."""
    alert_table = AlertTable(engine)  # creates the table in a store that has none yet
    queries = Queries(Store(engine), CorrectionTable(engine))
    bucket = aggregates.bucket_seconds(window)
    chat = aggregates.sentiment_counts(
        engine, EventFilter(stream="chat"), window, bucket, "channel"
    )
    news = aggregates.sentiment_counts(engine, EventFilter(stream="news"), window, bucket, "ticker")
    everything = aggregates.overall([*chat, *news])
    by_channel = aggregates.by_group(chat, "channel")
    by_ticker = aggregates.by_group(news, "ticker")
    episodes = aggregates.episodes(engine, window)
    chat_episodes = [e for e in episodes if e.stream == "chat"]
    news_episodes = [e for e in episodes if e.stream == "news"]
    intent_counts = aggregates.intent_mix(engine, EventFilter(stream="chat"), window)

    volume, sentiment, negative, intents = [], [], [], []
    if everything:
        volume.append(
            Chart(
                "volume",
                charts.volume(everything, window, episodes, "Messages"),
                "Messages per bucket (chat and news), stacked by sentiment; "
                "shaded bands are alert episodes.",
            )
        )
        sentiment.append(
            Chart(
                "share",
                charts.sentiment_share(everything, window, episodes, "Sentiment share, all"),
                "Share of negative, neutral and positive messages per bucket, both streams.",
            )
        )
    channels = aggregates.top_groups(by_channel)
    for i, name in enumerate(channels[:CHANNEL_CHARTS]):
        marks = [e for e in chat_episodes if e.scope_kind != "channel" or e.scope == name]
        sentiment.append(
            Chart(
                f"share-channel-{i}",
                charts.sentiment_share(
                    [c for c in by_channel if c.group == name],
                    window,
                    marks,
                    f"Sentiment share, channel {name}",
                ),
                f"Share of negative, neutral and positive chat messages on channel {name}.",
            )
        )
    if channels:
        negative.append(
            Chart(
                "negative-channel",
                charts.negative_share_by_group(
                    by_channel, channels, window, chat_episodes, "Negative share by channel"
                ),
                f"Negative share of chat messages per channel (the {len(channels)} largest; "
                "one line each, told apart by colour and dash).",
            )
        )
    tickers = aggregates.top_groups(by_ticker)
    if tickers:
        negative.append(
            Chart(
                "negative-ticker",
                charts.negative_share_by_group(
                    by_ticker, tickers, window, news_episodes, "Negative share by ticker"
                ),
                f"Negative share of news articles per ticker (the {len(tickers)} most "
                "mentioned; an article counts for each ticker it names).",
            )
        )
    if intent_counts:
        intents.append(
            Chart(
                "intents",
                charts.intent_mix(intent_counts, "Intent mix (customer turns)"),
                "Customer turns per intent in the window, most first.",
            )
        )
    return ReportView(
        title=title,
        window=window,
        generated=generated,
        bucket_s=bucket,
        chats=sum(c.n for c in chat),
        news=sum(c.n for c in news),
        dead_letters=dead_letter_counts(engine, window),
        volume=volume,
        sentiment=sentiment,
        negative=negative,
        intents=intents,
        channels=group_shares(by_channel),
        tickers=group_shares(by_ticker),
        intent_counts=intent_counts,
        alerts=[_alert(alert_table, e) for e in episodes],
        negatives=most_negative(queries, window),
    )


def _inline(source: str, tag: str) -> Markup:
    """``source`` made safe as the text of a ``<script>`` or ``<style>`` element.

    An HTML parser ends the element at ``</script`` (``</style``) and treats ``<!--`` in a
    script specially; plotly.min.js has neither today.  A backslash before the slash or
    the bang means the same in a JavaScript or CSS string or regex, the only places such
    text can occur.
    """
    escaped = re.sub(f"</({tag})", r"<\\/\1", source, flags=re.IGNORECASE)
    return Markup(escaped.replace("<!--", "<\\!--"))  # noqa: S704 (element text, not markup)


def render(view: ReportView) -> str:
    """The report as one HTML document (plotly.js inlined only when there are charts)."""
    env = views.templates().env
    plotly_js = _inline(views.plotly_js().read_text(encoding="utf-8"), "script")
    style = _inline((views.STATIC_DIR / "style.css").read_text(encoding="utf-8"), "style")
    return env.get_template(TEMPLATE).render(
        view=view,
        csp=CONTENT_SECURITY_POLICY,
        style=style,
        plotly_js=plotly_js if view.charts else None,
        where=_where,
        most_negative=MOST_NEGATIVE,
    )


def build_report(
    engine: Engine,
    window: Window,
    *,
    title: str = "attnwatch report",
    generated: datetime | None = None,
) -> str:
    """The HTML report of ``window`` over the store behind ``engine``.

    ``generated`` (default now) is the time printed in the header.  Creates the
    ``alerts`` and ``corrections`` tables if the store has none (as the dashboard does);
    raises :class:`~pipeline.errors.StoreError` when the store cannot be read.  An empty
    window gives a report that says so, without charts or plotly.js.
    """
    when = generated if generated is not None else datetime.now(UTC)
    return render(report_view(engine, window, title=title, generated=when))
