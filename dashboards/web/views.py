"""Rendering: the Jinja2 templates, the helpers they call, and where the static files are.

Templates are autoescaped; the only HTML built in Python is the shaded text
(:mod:`dashboards.web.shading`), whose pieces are escaped there.  plotly.js is served from the
plotly wheel's own copy (``plotly/package_data/plotly.min.js``), so the pages need nothing
from the network.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from dashboards.data.queries import EventRow
from dashboards.web.shading import shade, top_words

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
#: Pages in the navigation bar: (path, label).
NAV = (
    ("/", "Live feed"),
    ("/trends", "Trends"),
    ("/alerts", "Alerts"),
    ("/model", "Model"),
)


def plotly_js() -> Path:
    """The path of plotly.js inside the installed plotly package."""
    resource = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    path = Path(str(resource))
    if not path.is_file():
        msg = f"plotly.js is not at {path}: is the plotly package installed as files?"
        raise FileNotFoundError(msg)
    return path


def url(path: str, params: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """``path`` with a query string of ``params`` updated by ``changes`` (``None``/"" drop)."""
    merged = {**(params or {}), **changes}
    query = {k: str(v) for k, v in merged.items() if v is not None and v != ""}
    return f"{path}?{urlencode(query)}" if query else path


def when(moment: datetime | None) -> str:
    """A time as the pages print it: UTC, to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def percent(value: float | None, digits: int = 0) -> str:
    """``0.423`` as ``42%``; empty for ``None``."""
    return "" if value is None else f"{value:.{digits}%}"


def event_anchor(input_id: str) -> str:
    """An HTML id for an event (``chat:123`` -> ``event-chat-123``)."""
    return "event-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in input_id)


def shaded(row: EventRow, task: str) -> Markup:
    """The row's text shaded by ``task``'s attention (sentiment's when it has no intent)."""
    if task == "intent" and row.intent_attention:
        return shade(row.text, row.intent_attention, "intent")
    return shade(row.text, row.sentiment_attention, "sentiment")


def attention_task(row: EventRow, task: str) -> str:
    """Which task's attention :func:`shaded` shows for ``row``."""
    return "intent" if task == "intent" and row.intent_attention else "sentiment"


def unfaithful(row: EventRow, task: str) -> bool:
    """Whether training found the attention :func:`shaded` shows for ``row`` not faithful."""
    shown = attention_task(row, task)
    return (row.intent_faithful if shown == "intent" else row.sentiment_faithful) is False


def evidence_shaded(row: EventRow) -> Markup:
    """Long news: the evidence sentence shaded by its own sentiment words.

    Its words sum to one within the sentence (the article's shading scales them by the
    sentence's share), so the sentence reads on its own; plain text for rows without them.
    """
    sentence = row.sentiment_evidence or ""
    if row.sentiment_evidence_attention is None:
        return escape(sentence)
    return shade(sentence, row.sentiment_evidence_attention, "sentiment")


def heaviest(row: EventRow, task: str, n: int = 3) -> Sequence[tuple[str, float]]:
    """The row's ``n`` heaviest words for the task :func:`shaded` shows."""
    if attention_task(row, task) == "intent":
        return top_words(row.intent_attention, n)
    return top_words(row.sentiment_attention, n)


def templates() -> Jinja2Templates:
    """The template set with the helpers above as globals."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        nav=NAV,
        url=url,
        when=when,
        percent=percent,
        anchor=event_anchor,
        shaded=shaded,
        attention_task=attention_task,
        unfaithful=unfaithful,
        evidence_shaded=evidence_shaded,
        heaviest=heaviest,
    )
    return Jinja2Templates(env=env)
