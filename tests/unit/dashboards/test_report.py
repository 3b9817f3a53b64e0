"""The mailable report: one self-contained document, nothing fetched, the window's data only."""

from __future__ import annotations

import html
import json
import math
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import attnwatch.cli.dashboard as cli
from dashboards.data.filters import Window
from dashboards.report import CONTENT_SECURITY_POLICY, build_report
from dashboards.web.views import plotly_js
from pipeline.schema import DeadLetter, SourceRef
from pipeline.store import open_store
from tests.unit.dashboards.conftest import MINUTE, N_CHATS, N_NEWS, SENTIMENTS, T0, chat, task
from tests.unit.dashboards.html import events, html_lang, shaded_spans

WHOLE = Window(T0, T0 + timedelta(hours=2), None)
GENERATED = T0 + timedelta(hours=2)
#: Attributes through which HTML can make a browser fetch something.
URL_ATTRIBUTES = {
    "src",
    "href",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "background",
    "xlink:href",
    "ping",
    "manifest",
    "cite",
    "longdesc",
}
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '</script><script src="https://evil.example/x.js"></script>'


class Document(HTMLParser):
    """What a browser would act on: tags, URL attributes, scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.declarations: list[str] = []
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        for name, value in attrs:
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")
        if tag == "script":
            self._open = tag
            self.scripts.append((attributes, ""))
        elif tag == "style":
            self._open = tag
            self.styles.append("")

    def handle_data(self, data: str) -> None:
        if self._open is None:
            return
        if self._open == "script":
            attributes, text = self.scripts[-1]
            self.scripts[-1] = (attributes, text + data)
        else:
            self.styles[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None


def parse(page: str) -> Document:
    document = Document()
    document.feed(page)
    document.close()
    return document


def figures(page: str) -> dict[str, dict]:
    """The JSON figure of every chart div, by chart id."""
    document = parse(page)
    by_id = {
        a.get("id"): text for a, text in document.scripts if a.get("type") == "application/json"
    }
    charts = re.findall(r'<div id="chart-([^"]+)" class="plot" data-figure="([^"]+)"', page)
    return {chart: json.loads(by_id[source]) for chart, source in charts}


def assert_self_contained(page: str) -> None:
    """Nothing in ``page`` makes a browser fetch anything from anywhere."""
    document = parse(page)
    for tag, name, value in document.urls:
        assert value.startswith(("data:", "#")), f"<{tag} {name}={value!r}> points outside"
    for attributes, _ in document.scripts:
        assert "src" not in attributes
    assert not {"link", "img", "iframe", "object", "embed", "base", "form"} & set(document.tags)
    for css in document.styles:
        assert "@import" not in css
        for target in re.findall(r"url\(\s*['\"]?([^'\")\s]*)", css):
            assert target.startswith(("data:", "#")), f"CSS url({target}) points outside"
    for figure in figures(page).values():
        assert "images" not in figure["layout"]  # a layout image would be fetched by URL
    assert f'content="{CONTENT_SECURITY_POLICY}"' in page.replace("&#39;", "'")


@pytest.fixture
def engine(store_url):
    with open_store(store_url) as store:
        yield store.engine


@pytest.fixture
def report(engine) -> str:
    return build_report(engine, WHOLE, title="Weekly report", generated=GENERATED)


def test_the_report_is_one_html_document_with_plotly_js_once(report):
    assert report.lstrip().lower().startswith("<!doctype html>")
    assert report.rstrip().endswith("</html>")
    document = parse(report)
    assert [d.lower() for d in document.declarations] == ["doctype html"]
    for tag in ("html", "head", "body", "title", "main", "h1"):
        assert document.tags.count(tag) == 1, tag
    assert html_lang(report) == "en"
    assert "<h1>Weekly report</h1>" in report
    plotly = plotly_js().read_text(encoding="utf-8")
    assert report.count(plotly[:500]) == 1
    assert report.count(plotly[-500:]) == 1
    assert sum(1 for _, text in document.scripts if "window.Plotly = Plotly" in text) == 1


def test_nothing_in_the_report_points_outside_it(report):
    assert_self_contained(report)
    assert 'href="#alerts"' in report


def test_every_table_has_a_caption_and_every_chart_a_name(report):
    assert report.count("<table") == report.count("<caption>") > 0
    for div in re.findall(r'<div id="chart-[^"]+"[^>]*>', report):
        assert 'role="img"' in div and 'aria-label="' in div


def test_the_charts_hold_the_windows_counts(report):
    charts = figures(report)
    assert set(charts) == {
        "volume",
        "share",
        "share-channel-0",
        "share-channel-1",
        "negative-channel",
        "negative-ticker",
        "intents",
    }
    volume = charts["volume"]
    assert sum(sum(trace["y"]) for trace in volume["data"]) == N_CHATS + N_NEWS
    assert [t["name"] for t in charts["negative-channel"]["data"]] == ["app", "web"]
    assert {t["name"] for t in charts["negative-ticker"]["data"]} == {"NWB", "NWBX", "AAPL"}
    assert sum(charts["intents"]["data"][0]["x"]) == 36  # customer turns: 3 of every 4
    # Both alert episodes are drawn on the charts of chat and of everything.
    for name in ("volume", "share", "negative-channel"):
        shapes = charts[name]["layout"]["shapes"]
        assert {s["name"] for s in shapes} == {"chat/channel/app/1", "chat/intent/card_declined/2"}
    # The app channel's share chart marks its own channel's episode; web's does not.
    assert len(charts["share-channel-0"]["layout"]["shapes"]) == 2
    assert [s["name"] for s in charts["share-channel-1"]["layout"]["shapes"]] == [
        "chat/intent/card_declined/2"
    ]
    assert charts["negative-ticker"]["layout"]["shapes"] == []


def test_the_header_counts_chats_news_dead_letters_and_alerts(report):
    counts = dict(re.findall(r'<td data-count="([^"]+)">(\d+)', report))
    assert counts == {"chats": "48", "news": "12", "dead-letters": "0", "alerts": "2"}
    assert "2026-11-26 08:00:00 UTC" in report and "2026-11-26 10:00:00 UTC" in report


def test_dead_letters_received_in_the_window_are_counted_by_reason(store_url):
    def letter(offset: int, reason: str, minutes: int) -> DeadLetter:
        return DeadLetter(
            source=SourceRef(topic="chat", partition=0, offset=offset),
            reason=reason,
            detail="bad",
            raw=b"{",
            received_time=T0 + minutes * MINUTE,
        )

    letters = [letter(1, "invalid_json", 5), letter(2, "invalid_json", 6), letter(3, "schema", 7)]
    with open_store(store_url) as store:
        store.write([], [*letters, letter(4, "schema", 200)])  # the last after the window
        page = build_report(store.engine, WHOLE, generated=GENERATED)
    assert '<td data-count="dead-letters">3 (invalid_json: 2, schema: 1)</td>' in page


def test_alert_episodes_are_listed_with_evidence_and_rising_words(report):
    alerts = re.findall(
        r'<li class="alert alert-(\w+)" id="alert-\d+" data-alert-id="([^"]+)"', report
    )
    assert alerts == [("resolved", "chat/channel/app/1"), ("firing", "chat/intent/card_declined/2")]
    assert report.count("<q>my card was declined again</q> · P(negative) 0.93") == 2
    assert "top words: declined, card" in report
    assert report.count("<caption>Rising words (share of the attention mass)</caption>") == 2
    assert '<th scope="row">declined</th><td>5.0%</td><td>31.0%</td>' in report
    assert "(still open)" in report


def test_the_most_negative_messages_are_shaded_by_attention(report):
    shown = events(report)
    assert len(shown) == 10
    for input_id, fragment in shown:
        n = int(input_id.split(":")[1])
        assert n % 3 == 0  # the fixture labels every third message negative
        spans = shaded_spans(fragment)
        assert spans and all(s["data-weight"] is not None for s in spans)
        assert math.isclose(sum(float(s["data-weight"]) for s in spans), 1.0)
        assert "sentiment-negative" in fragment
    # Newest first among equal scores; chat turn 36's heaviest sentiment word is its third.
    assert [i for i, _ in shown][:4] == ["news:9", "news:6", "news:3", "news:0"]
    spans = shaded_spans(dict(shown)["chat:36"])
    heaviest = max(spans, key=lambda s: float(s["data-weight"]))
    assert heaviest["data-word"] == "was"
    assert "rgba(230, 159, 0, 0.85)" in heaviest["style"]


def test_events_outside_the_window_are_left_out(engine):
    window = Window(T0 + 30 * MINUTE, T0 + 50 * MINUTE, None)
    page = build_report(engine, window, generated=GENERATED)
    counts = dict(re.findall(r'<td data-count="([^"]+)">(\d+)', page))
    # Chat turns 30..47 and news 0..1 (news n at minute 48 + n; the end is exclusive).
    assert counts == {"chats": "18", "news": "2", "dead-letters": "0", "alerts": "1"}
    ids = [i for i, _ in events(page)]
    assert ids and set(ids) <= {"news:0"} | {f"chat:{n}" for n in range(30, 48)}
    assert "chat/channel/app/1" not in page  # resolved at minute 20
    charts = figures(page)
    assert sum(sum(t["y"]) for t in charts["volume"]["data"]) == 20
    for trace in charts["volume"]["data"]:
        assert all("2026-11-26 08:30:00" <= x < "2026-11-26 08:50:00" for x in trace["x"])


def test_a_window_without_events_says_so(engine):
    window = Window(T0 - timedelta(days=2), T0 - timedelta(days=1), None)
    page = build_report(engine, window, generated=GENERATED)
    assert "No messages were stored in this window." in page
    assert "No alert episodes overlap this window." in page
    assert "No negative messages in this window." in page
    assert figures(page) == {}
    assert "window.Plotly" not in page  # no charts: no 4.8 MB of plotly.js either
    assert_self_contained(page)


def test_an_empty_store_gives_a_report_that_says_so(tmp_path):
    # open_store creates only events and dead letters: no alerts or corrections table yet.
    with open_store(f"sqlite:///{tmp_path / 'empty.db'}") as store:
        page = build_report(store.engine, WHOLE, generated=GENERATED)
    counts = dict(re.findall(r'<td data-count="([^"]+)">(\d+)', page))
    assert counts == {"chats": "0", "news": "0", "dead-letters": "0", "alerts": "0"}
    assert "No messages were stored in this window." in page
    assert html_lang(page) == "en"
    assert_self_contained(page)


@pytest.fixture
def hostile_report(store_url) -> str:
    """The report of a store where a message and a channel name carry markup."""
    text = f'my card {HOSTILE} <img src="https://evil.example/y.png">'
    event = chat(0).model_copy(
        update={
            "input_id": "chat:hostile",
            "channel": HOSTILE,
            "text": text,
            "sentiment": task("negative", SENTIMENTS, text, score=0.99),
        }
    )
    with open_store(store_url) as store:
        store.write([event], [])
        return build_report(store.engine, WHOLE, generated=GENERATED)


def test_stored_text_cannot_break_out_of_the_document(hostile_report):
    assert_self_contained(hostile_report)
    assert events(hostile_report)[0][0] == "chat:hostile"
    assert HOSTILE not in hostile_report
    names = [t["name"] for t in figures(hostile_report)["negative-channel"]["data"]]
    assert html.escape(HOSTILE, quote=False) in names  # plotly.js shows it as text


def command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(cli.report)
    return app


def test_the_command_writes_the_report_and_says_where(store_url, tmp_path):
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    args = ["--since", "24h", "--until", "2026-11-26T10:00:00Z", "--out", str(out)]
    result = CliRunner().invoke(command_app(), [*args, "--store-url", store_url])
    assert result.exit_code == 0, result.output
    size = out.stat().st_size
    assert str(out) in result.output and f"{size} bytes" in result.output
    page = out.read_text(encoding="utf-8")
    assert re.search(r'<td data-count="chats">48<', page)
    assert "(the last 24h)" in page
    assert_self_contained(page)


def test_the_command_takes_an_iso_start_and_a_title(store_url, tmp_path):
    out = tmp_path / "r.html"
    args = ["--since", "2026-11-26T08:30:00", "--until", "2026-11-26T08:50:00+00:00"]
    result = CliRunner().invoke(
        command_app(),
        [*args, "--out", str(out), "--title", "Outage", "--store-url", store_url],
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<h1>Outage</h1>" in page and re.search(r'<td data-count="news">2<', page)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "since 'yesterday' is not an ISO 8601 time"),
        (["--since", "yesterday"], "or one of 1h, 6h, 24h, 7d, 30d"),
        (["--since", "2026-11-26T10:00:00Z", "--until", "2026-11-26T09:00:00Z"], "bad time range"),
        (["--store-url", "mysql://db/x"], "unsupported store URL"),
    ],
)
def test_the_command_refuses_what_it_cannot_use(store_url, tmp_path, args, message):
    out = tmp_path / "r.html"
    full = ["--store-url", store_url, "--out", str(out), *args]
    result = CliRunner().invoke(command_app(), full)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_an_unwritable_output_is_a_clear_error(store_url, tmp_path):
    out = tmp_path / "missing-folder" / "r.html"
    result = CliRunner().invoke(command_app(), ["--store-url", store_url, "--out", str(out)])
    assert result.exit_code == 2 and "could not write" in result.output


@pytest.mark.slow
def test_the_report_renders_offline_in_chromium(hostile_report):
    """Headless Chromium draws every chart and fetches nothing, markup in the data or not."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is needed for the browser test"
    attempted: list[str] = []
    problems: list[str] = []

    def block(route):
        url = route.request.url
        if url.startswith(("data:", "about:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.route("**/*", block)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.set_content(hostile_report, wait_until="load")
            page.wait_for_function(
                "document.querySelectorAll('.plot .main-svg').length >= "
                "document.querySelectorAll('.plot').length",
                timeout=30_000,
            )
            drawn = page.eval_on_selector_all(
                ".plot", "els => els.map(e => e.querySelectorAll('.main-svg').length > 0)"
            )
            bars = page.locator("#chart-volume .bars path").count()
            spans = page.eval_on_selector_all(
                "p.text[data-attention] span.w[data-weight]",
                "els => els.map(e => getComputedStyle(e).backgroundColor)",
            )
        finally:
            browser.close()
    assert attempted == []
    assert problems == []
    assert len(drawn) == len(figures(hostile_report)) == 8 and all(drawn)
    assert bars > 0
    assert spans and "rgba(230, 159, 0, 0.85)" in spans
