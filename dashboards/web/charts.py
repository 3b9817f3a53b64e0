"""plotly.js figures (``{"data", "layout"}`` dicts) built from the aggregates.

The pages hand these to ``Plotly.newPlot`` as they are (plotly.js from the plotly wheel),
so nothing here needs plotly's Python objects.  Colours are colour-blind safe: sentiment
uses Okabe-Ito vermillion (negative) and blue (positive) with grey for neutral, groups the
Okabe-Ito order with a different dash per line, so no series is told apart by colour
alone.  Alert episodes are drawn as shaded bands with their scope written on them.
Times are plotted as UTC wall-clock strings (plotly.js ignores zone suffixes).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from dashboards.data.aggregates import Count, Episode, bucket_seconds
from dashboards.data.filters import Window

Figure = dict[str, Any]

SENTIMENTS = ("negative", "neutral", "positive")
SENTIMENT_COLOURS = {"negative": "#D55E00", "neutral": "#999999", "positive": "#0072B2"}
#: Okabe & Ito (2008), in their order.
GROUP_COLOURS = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
    "#F0E442",
)
DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
_EPISODE_FILL = "rgba(0, 0, 0, 0.07)"
#: Alert episodes named on a chart; more would overlap.
MAX_EPISODE_NOTES = 12


def plot_time(moment: datetime) -> str:
    """A UTC time as plotly.js reads a date."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _label(text: str) -> str:
    # plotly.js renders a subset of HTML in names and annotations: stored text stays text.
    return html.escape(text, quote=False)


def _layout(title: str, window: Window | None, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": _label(title)},
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": "#1a1a1a"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2, "traceorder": "normal"},
        "hovermode": "x unified",
    }
    if window is not None:
        layout["xaxis"] = {
            "type": "date",
            "title": {"text": "event time (UTC)"},
            "range": [plot_time(window.start), plot_time(window.end)],
            "gridcolor": "#e5e5e5",
        }
    layout.update(extra)
    return layout


def episode_marks(episodes: Iterable[Episode], window: Window) -> dict[str, list[Any]]:
    """Layout ``shapes`` and ``annotations`` that draw alert episodes as bands.

    Bands lie above the data (stacked areas would hide them), light enough to read it
    through, with a dashed edge; an open episode runs to the window's end.  Only the
    first :data:`MAX_EPISODE_NOTES` are named on the chart (the page lists them all).
    """
    shapes: list[Any] = []
    notes: list[Any] = []
    for e in episodes:
        start = max(e.starts_at, window.start)
        end = min(e.ends_at or window.end, window.end)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "layer": "above",
                "x0": plot_time(start),
                "x1": plot_time(end),
                "y0": 0,
                "y1": 1,
                "fillcolor": _EPISODE_FILL,
                "line": {"width": 1.5, "color": "#000000", "dash": "dot"},
                "name": e.alert_id,
            }
        )
        if len(notes) < MAX_EPISODE_NOTES:
            where = e.stream if e.scope_kind == "overall" else f"{e.scope_kind} {e.scope}"
            state = "open" if e.ends_at is None else "resolved"
            notes.append(
                {
                    "x": plot_time(start),
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "xanchor": "left",
                    "yanchor": "top",
                    "textangle": -90,
                    "showarrow": False,
                    "bgcolor": "rgba(255, 255, 255, 0.8)",
                    "text": _label(f"alert ({state}): {where}"),
                    "font": {"size": 10},
                }
            )
    return {"shapes": shapes, "annotations": notes}


def _bar_width_ms(window: Window) -> float:
    """A bar nine tenths as wide as the window's bucket, in milliseconds (plotly's date unit)."""
    return bucket_seconds(window) * 1000 * 0.9


def _by_bucket(counts: Iterable[Count]) -> dict[datetime, dict[str, int]]:
    table: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SENTIMENTS, 0))
    for c in counts:
        if c.label in SENTIMENTS:
            table[c.bucket][c.label] += c.n
    return dict(sorted(table.items()))


def sentiment_share(
    counts: Sequence[Count], window: Window, episodes: Sequence[Episode], title: str
) -> Figure:
    """Stacked shares of negative, neutral and positive per bucket, one bar per bucket.

    Bars, not stacked areas: an area over a single bucket (a burst, the first minutes of a
    store) has no width and draws nothing; a bar of the bucket's width always shows.
    """
    table = _by_bucket(counts)
    x = [plot_time(b) for b in table]
    totals = [sum(v.values()) for v in table.values()]
    data = [
        {
            "type": "bar",
            "name": label,
            "x": x,
            "y": [v[label] / t for v, t in zip(table.values(), totals, strict=True)],
            "width": [_bar_width_ms(window)] * len(x),
            "customdata": [v[label] for v in table.values()],
            "marker": {"color": SENTIMENT_COLOURS[label]},
            "hovertemplate": f"{label}: %{{y:.0%}} (%{{customdata}} messages)<extra></extra>",
        }
        for label in SENTIMENTS
    ]
    layout = _layout(title, window, barmode="stack", **episode_marks(episodes, window))
    layout["yaxis"] = {"title": {"text": "share of messages"}, "tickformat": ".0%", "range": [0, 1]}
    return {"data": data, "layout": layout}


def negative_share_by_group(
    counts: Sequence[Count],
    groups: Sequence[str],
    window: Window,
    episodes: Sequence[Episode],
    title: str,
) -> Figure:
    """One line per group: its negative share per bucket."""
    data = []
    for i, group in enumerate(groups):
        table = _by_bucket(c for c in counts if c.group == group)
        totals = [sum(v.values()) for v in table.values()]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _label(group),
                "x": [plot_time(b) for b in table],
                "y": [v["negative"] / t for v, t in zip(table.values(), totals, strict=True)],
                "customdata": totals,
                "line": {
                    "color": GROUP_COLOURS[i % len(GROUP_COLOURS)],
                    "dash": DASHES[i % len(DASHES)],
                    "width": 2,
                },
                "hovertemplate": "%{y:.0%} of %{customdata} messages",
            }
        )
    layout = _layout(title, window, **episode_marks(episodes, window))
    layout["yaxis"] = {"title": {"text": "negative share"}, "tickformat": ".0%", "range": [0, 1]}
    return {"data": data, "layout": layout}


def volume(
    counts: Sequence[Count], window: Window, episodes: Sequence[Episode], title: str
) -> Figure:
    """Messages per bucket, stacked by sentiment."""
    table = _by_bucket(counts)
    x = [plot_time(b) for b in table]
    data = [
        {
            "type": "bar",
            "name": label,
            "x": x,
            "y": [v[label] for v in table.values()],
            # Without a width plotly guesses one from the spacing of the dates, and a
            # single bucket has none: it drew a 1 px hairline.
            "width": [_bar_width_ms(window)] * len(x),
            "marker": {"color": SENTIMENT_COLOURS[label]},
        }
        for label in SENTIMENTS
    ]
    layout = _layout(title, window, barmode="stack", **episode_marks(episodes, window))
    layout["yaxis"] = {"title": {"text": "messages"}}
    return {"data": data, "layout": layout}


def intent_mix(pairs: Sequence[tuple[str, int]], title: str) -> Figure:
    """Customer turns per intent, largest at the top."""
    ordered = list(reversed(pairs))
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "customer turns",
            "y": [_label(k) for k, _ in ordered],
            "x": [n for _, n in ordered],
            "marker": {"color": GROUP_COLOURS[3]},
        }
    ]
    layout = _layout(title, None, hovermode="closest", showlegend=False)
    layout["margin"] = {"l": 200, "r": 20, "t": 50, "b": 50}
    layout["xaxis"] = {"title": {"text": "customer turns"}}
    layout["height"] = max(300, 24 * len(pairs) + 100)
    return {"data": data, "layout": layout}


def trajectory(
    turns: Sequence[int],
    times: Sequence[datetime],
    values: Sequence[float],
    labels: Sequence[str],
    title: str,
) -> Figure:
    """A customer's sentiment turn by turn: P(positive) - P(negative), from -1 to 1.

    ``turns`` are the turns' numbers in the conversation (the x axis): by turn, not by
    time, so a conversation reads the same whether its turns came seconds or hours
    apart; ``times`` (event time) show on hover.
    """
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "customer sentiment",
            "x": list(turns),
            "y": list(values),
            "text": list(labels),
            "customdata": [plot_time(t) for t in times],
            "line": {"color": "#000000", "width": 1},
            "marker": {
                "size": 11,
                "color": [SENTIMENT_COLOURS.get(lb, "#999999") for lb in labels],
                "symbol": [
                    {"negative": "triangle-down", "positive": "triangle-up"}.get(lb, "circle")
                    for lb in labels
                ],
            },
            "hovertemplate": "turn %{x} (%{customdata} UTC) %{text}: %{y:.2f}<extra></extra>",
        }
    ]
    layout = _layout(title, None, hovermode="closest", showlegend=False)
    layout["xaxis"] = {"type": "linear", "title": {"text": "turn"}, "dtick": 1}
    layout["yaxis"] = {
        "title": {"text": "P(positive) - P(negative)"},
        "range": [-1.05, 1.05],
        "zeroline": True,
    }
    return {"data": data, "layout": layout}


def confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> Figure:
    """A confusion matrix as a heatmap (gold down, predicted across), counts written in."""
    names = [_label(lb) for lb in labels]
    data = [
        {
            "type": "heatmap",
            "z": [list(r) for r in matrix],
            "x": names,
            "y": names,
            "colorscale": "Cividis",
            "texttemplate": "%{z}",
            "showscale": False,
            "hovertemplate": "gold %{y}, predicted %{x}: %{z}<extra></extra>",
        }
    ]
    layout = _layout(title, None, hovermode="closest")
    layout["xaxis"] = {"title": {"text": "predicted"}, "tickangle": -45}
    layout["yaxis"] = {"title": {"text": "gold"}, "autorange": "reversed"}
    layout["height"] = max(350, 28 * len(labels) + 200)
    layout["margin"] = {"l": 200, "r": 20, "t": 50, "b": 200}
    return {"data": data, "layout": layout}
