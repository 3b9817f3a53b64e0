"""The analyst dashboard in real headless Chromium, over a store filled by the real pipeline.

A module fixture sends ~200 mixed events (chats, news and bad records) through the Tansu
broker and the run loop with the tiny model into SQLite, then serves the app with uvicorn
on loopback.  Each test opens a fresh browser context that aborts, and records, every
request for any host but the app's own, and records console errors and uncaught page
errors; it ends by saving a full-page screenshot under ``test-artifacts/browser/`` and
asserting that both lists are empty.

Chromium is Debian's (``make browser``), driven by Playwright through ``executable_path``:
the tests never download a browser.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd
import pytest
import uvicorn
from kafka import KafkaProducer
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from attnwatch.cli.dashboard import dashboard_app
from attnwatch.service import service
from attnwatch.settings import Settings
from consumers.connection import KafkaConnection
from pipeline.alerting.model import AlertEvent, Evidence, RisingWord
from pipeline.store import open_store, read_events
from pipeline.store.alerts import AlertTable
from tests.integration.helpers import (
    handled,
    make_topics,
    produce_mixed,
    run_until,
    unique_settings,
)
from tests.support.network import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
N_VALID, N_BAD = 190, 10
#: Background colours of shaded words per task (dashboards.web.shading.COLOURS).
SENTIMENT_RGB, INTENT_RGB = (230, 159, 0), (86, 180, 233)
#: Milliseconds a browser-side wait may take (a page here loads in well under one second).
WAIT_MS = 15_000

#: What the tests read of each feed row, as a person sees it.
READ_ROWS = """
() => Array.from(document.querySelectorAll('#feed-list > li.event')).map((li) => {
  const badge = li.querySelector('.badge[class*="sentiment-"]');
  const corrected = badge.querySelector('.corrected');
  const model = corrected ? corrected.textContent.match(/model: (\\S+)/)[1]
                          : badge.querySelector('strong').textContent;
  const text = li.querySelector('p.text');
  return {
    id: li.dataset.inputId,
    kind: li.classList.contains('event-chat') ? 'chat' : 'news',
    second: li.querySelector('.meta span:nth-of-type(2)').textContent,
    sentiment_shown: badge.querySelector('strong').textContent,
    sentiment_model: model,
    attention: text.dataset.attention,
    text: text.textContent,
    words: Array.from(text.querySelectorAll('span.w')).map((s) => ({
      word: s.dataset.word,
      weight: s.dataset.weight === undefined ? null : s.dataset.weight,
      colour: getComputedStyle(s).backgroundColor,
    })),
    corrections: Array.from(li.querySelectorAll('.correction')).map((c) => c.textContent),
  };
})
"""


@dataclass(frozen=True)
class Dashboard:
    """The served app and what went into its store."""

    settings: Settings
    url: str
    connection: KafkaConnection

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    def events(self) -> pd.DataFrame:
        return read_events(self.settings.store_url)


@dataclass
class Tab:
    """A page in its own browser context, with what it did that it should not have."""

    page: Page
    name: str
    netloc: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or (
            parts.scheme == "http" and parts.netloc == self.netloc
        ):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("blockedbyclient")

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location})")

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"pageerror: {error}")

    def finish(self, suffix: str = "") -> None:
        """Save a full-page screenshot, then fail on any foreign request or page error."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = f"{self.name}-{suffix}" if suffix else self.name
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        assert self.foreign == [], f"requests for other hosts than the app: {self.foreign}"
        assert self.errors == [], f"errors in the page: {self.errors}"


def wait_healthy(url: str, thread: threading.Thread, timeout_s: float = 20) -> None:
    def healthy() -> bool:
        if not thread.is_alive():
            pytest.fail("the dashboard server stopped while starting")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(healthy, timeout_s, f"the dashboard at {url} answering /healthz")


def run_pipeline(settings: Settings, connection: KafkaConnection, expected: int) -> None:
    """One run of the real loop that stops once ``expected`` more records are handled."""
    with service(settings, connection) as svc:
        run_until(svc.runner, handled(svc.runner, expected), timeout_s=60)


def fire_alert(store_url: str, now: datetime) -> None:
    """An open alert on the web channel, as the evaluator would record it."""
    event = AlertEvent(
        alert_id="chat/channel/web/browser",
        status="firing",
        scope_kind="channel",
        scope="web",
        stream="chat",
        severity="warning",
        starts_at=now - timedelta(minutes=10),
        summary="chat channel 'web': negative share 70% over 40 messages",
        baseline_share=0.2,
        current_share=0.7,
        baseline_n=400,
        current_n=40,
        statistic=6.5,
        detector="two_proportion_z",
        evidence=[
            Evidence(text_excerpt="my card was declined", sentiment_score=0.9, top_words=["card"])
        ],
        rising_words=[RisingWord(word="declined", baseline=0.05, current=0.31)],
    )
    with open_store(store_url) as store:
        AlertTable(store.engine).fire(
            {
                "alert_id": event.alert_id,
                "scope_kind": event.scope_kind,
                "scope": event.scope,
                "stream": event.stream,
                "severity": event.severity,
                "starts_at": event.starts_at,
                "statistic": event.statistic,
                "payload": event.model_dump_json(),
            },
            now,
        )


@pytest.fixture(scope="module")
def dashboard(
    broker, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """The app over a store the real pipeline filled, served on a free loopback port."""
    store_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}"
    port = free_port()
    settings = unique_settings(
        store_url, tiny_model, dashboard_host="127.0.0.1", dashboard_port=port
    )
    connection = broker.connection
    make_topics(settings, connection)
    produce_mixed(settings, connection, n_valid=N_VALID, n_bad=N_BAD)
    run_pipeline(settings, connection, N_VALID + N_BAD)
    fire_alert(store_url, datetime.now(UTC))

    app = dashboard_app(settings, live_poll_s=0.2)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, thread)
        yield Dashboard(settings, url, connection)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "the dashboard server did not stop"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "chromium is not installed: run `make browser` (Debian's chromium package; "
            "the browser tests drive it and never download a browser)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Browser, dashboard: Dashboard, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = browser.new_context(base_url=dashboard.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    opened = Tab(page, request.node.name, dashboard.netloc)
    context.route("**/*", opened.route)
    page.on("console", opened.console)
    page.on("pageerror", opened.page_error)
    yield opened
    context.close()


def read_rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.evaluate(READ_ROWS)
    return rows


def rgba(colour: str) -> tuple[tuple[int, int, int], float]:
    """``rgba(1, 2, 3, 0.5)`` or ``rgb(1, 2, 3)`` as ((1, 2, 3), alpha)."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)]
    alpha = numbers[3] if len(numbers) == 4 else 1.0
    return (int(numbers[0]), int(numbers[1]), int(numbers[2])), alpha


def weights(attention: Any) -> list[float]:
    return [float(a["weight"]) for a in attention]


def assert_shaded(row: dict[str, Any], logged: list[float], rgb: tuple[int, int, int]) -> None:
    """Every logged weight is on a span, and the heaviest word is visibly shaded in ``rgb``."""
    shown = [float(w["weight"]) for w in row["words"] if w["weight"] is not None]
    assert shown == logged, f"{row['id']}: weights on the page differ from the store"
    assert 0 < sum(shown) <= 1 + 1e-6
    heaviest = max(range(len(row["words"])), key=lambda i: float(row["words"][i]["weight"] or 0))
    colour, alpha = rgba(row["words"][heaviest]["colour"])
    assert colour == rgb, f"{row['id']}: heaviest word shaded {colour}, not {rgb}"
    assert alpha > 0.5, f"{row['id']}: heaviest word barely shaded ({alpha})"


def test_the_guard_blocks_and_records_other_hosts(tab: Tab) -> None:
    tab.page.goto("/")
    elsewhere = f"http://127.0.0.1:{free_port()}/x"
    outcome = tab.page.evaluate(
        """async (urls) => Promise.all(urls.map((u) =>
             fetch(u).then(() => 'loaded', () => 'blocked')))""",
        ["http://example.com/x", elsewhere, "/healthz"],
    )
    assert outcome == ["blocked", "blocked", "loaded"]
    assert tab.foreign == ["http://example.com/x", elsewhere]
    # Console errors and uncaught exceptions are recorded too.
    assert any("ERR_BLOCKED_BY_CLIENT" in error for error in tab.errors), tab.errors
    with tab.page.expect_event("pageerror", timeout=WAIT_MS):
        tab.page.evaluate("setTimeout(() => { throw new Error('boom from the page'); }, 0)")
    assert any("boom from the page" in error for error in tab.errors), tab.errors


def test_the_feed_shows_words_shaded_by_attention(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    events = dashboard.events().set_index("input_id")
    page.goto("/")
    rows = read_rows(page)
    assert len(rows) == 50  # the first page of the ~200 the pipeline stored
    assert {r["attention"] for r in rows} == {"sentiment"}
    for row in rows:
        assert_shaded(row, weights(events.loc[row["id"], "sentiment_attention"]), SENTIMENT_RGB)

    # The toggle re-renders the feed with intent attention where a row has one.
    page.check("#att-intent")
    expect(page.locator('#feed-list p.text[data-attention="intent"]').first).to_be_attached()
    expect(page).to_have_url(re.compile(r"attention=intent"))
    rows = read_rows(page)
    assert len(rows) == 50
    with_intent = [r for r in rows if events.loc[r["id"], "intent_attention"] is not None]
    assert with_intent, "no customer turn among the newest 50 messages"
    for row in rows:
        if row in with_intent:
            assert row["attention"] == "intent"
            assert_shaded(row, weights(events.loc[row["id"], "intent_attention"]), INTENT_RGB)
        else:
            assert row["attention"] == "sentiment"
            logged = weights(events.loc[row["id"], "sentiment_attention"])
            assert_shaded(row, logged, SENTIMENT_RGB)
    tab.finish()


def test_a_filter_narrows_the_feed(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    page.goto("/?limit=200")
    everything = read_rows(page)
    events = dashboard.events()
    assert len(everything) == len(events) >= N_VALID

    page.fill("#f-channel", "web")
    page.click("#filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"channel=web"))
    web = read_rows(page)
    expected = events[events["channel"] == "web"]
    assert {r["id"] for r in web} == set(expected["input_id"])
    assert all(r["kind"] == "chat" and r["second"] == "web" for r in web)
    assert 0 < len(web) < len(everything)

    # Then a sentiment as well: the rarest one the model gave on the web channel.
    counts = expected["sentiment_label"].value_counts()
    label = str(counts.index[-1])
    page.select_option("#f-sentiment", label)
    page.click("#filters button[type=submit]")
    expect(page).to_have_url(re.compile(rf"sentiment={label}"))
    narrowed = read_rows(page)
    assert len(narrowed) == counts[label]
    assert all(r["second"] == "web" and r["sentiment_model"] == label for r in narrowed)
    if len(counts) > 1:
        assert len(narrowed) < len(web)
    tab.finish()


def test_a_trend_chart_renders(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    page.goto("/trends?range=1h")
    charts = page.locator(".plot[data-figure]")
    assert charts.count() == 4
    for i in range(4):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached()
    expect(page.locator("#chart-share .trace").first).to_be_attached()
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('.plot[data-figure]')).map((el) => ({
             id: el.id,
             traces: (el.data || []).length,
             y: (el.data || []).map((t) => (t.y || []).reduce((a, b) => a + (+b || 0), 0)),
           }))"""
    )
    assert all(chart["traces"] > 0 for chart in drawn), drawn
    total = int(re.search(r"(\d+) messages from", page.locator(".summary").inner_text())[1])
    assert total >= N_VALID
    volume = next(chart for chart in drawn if chart["id"] == "chart-volume")
    assert sum(volume["y"]) == total  # stacked by sentiment: every message in one bar
    # With no range chosen, the charts show the data's own time range.
    page.goto("/trends")
    expect(page.locator("#f-range")).to_have_value("data")
    expect(page.locator("#chart-volume .barlayer path").first).to_be_attached()
    shown = int(re.search(r"(\d+) messages from", page.locator(".summary").inner_text())[1])
    assert shown == total
    tab.finish()


#: Widths in px of what each chart draws: the share chart's stacked areas, the volume bars.
DRAWN_WIDTHS = """
() => Object.fromEntries(['share', 'volume'].map((id) => [id, Array.from(
  document.querySelectorAll(`#chart-${id} .scatterlayer path.js-fill, #chart-${id} .barlayer path`)
).map((p) => p.getBBox().width)]))
"""


def test_the_trend_charts_show_a_burst_within_one_bucket(tab: Tab) -> None:
    # Every event the pipeline stored has the same event time (one 1-minute bucket of the
    # hour): a person must still see that minute's sentiment share and volume.
    page = tab.page
    page.goto("/trends?range=1h")
    expect(page.locator("#chart-volume .barlayer path").first).to_be_attached()
    widths = page.evaluate(DRAWN_WIDTHS)
    tab.finish()
    problems = []
    if max(widths["share"], default=0) < 1:
        problems.append(
            f"the sentiment share chart draws nothing (area widths {widths['share']} px): "
            "dashboards/web/charts.py sentiment_share draws each label as a stacked area "
            '(mode "lines", no markers), which has no width when the window holds one bucket'
        )
    if max(widths["volume"], default=0) < 3:
        problems.append(
            f"the volume chart's bars are hairlines ({max(widths['volume'], default=0)} px "
            "wide): dashboards/web/charts.py volume sets no bar width, and with a single date "
            "on the x axis plotly cannot infer one from the spacing of the buckets"
        )
    if problems:
        pytest.fail("app bug, a one-bucket window draws invisibly: " + "; ".join(problems))


def test_a_relabel_is_saved(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    page.goto("/")
    row = next(r for r in read_rows(page) if r["kind"] == "chat")
    item = page.locator(f'#feed-list > li.event[data-input-id="{row["id"]}"]')
    item.locator("summary").click()
    form = item.locator("form.relabel-form").filter(
        has=page.locator('input[name="task"][value="sentiment"]')
    )
    options = form.locator('select[name="label"] option').all_inner_texts()
    new = next(label for label in options if label != row["sentiment_shown"])
    form.locator('select[name="label"]').select_option(new)
    form.locator('input[name="analyst"]').fill("Browser Test")
    form.locator("button[type=submit]").click()

    correction = item.locator(".correction")
    expect(correction).to_have_count(1)
    expect(correction).to_contain_text(f"sentiment {row['sentiment_shown']} → {new}")
    expect(correction).to_contain_text("Browser Test")
    expect(item.locator(".badge[class*='sentiment-'] strong")).to_have_text(new)
    expect(item.locator(".badge[class*='sentiment-'] .corrected")).to_contain_text(
        f"model: {row['sentiment_model']}"
    )

    # Saved on the server: there after a reload, and in the training CSV.
    page.reload()
    expect(item.locator(".correction")).to_contain_text(new)
    response = page.request.get("/corrections.csv")
    assert response.ok
    saved = list(csv.DictReader(io.StringIO(response.text())))
    assert {"text": row["text"], "sentiment": new} in [
        {"text": r["text"], "sentiment": r["sentiment"]} for r in saved
    ]
    tab.finish()


def produce_chat(dashboard: Dashboard, text: str) -> None:
    payload = {
        "message_id": f"live-{uuid.uuid4().hex[:8]}",
        "conversation_id": "live-conversation",
        "channel": "web",
        "role": "customer",
        "text": text,
        "ts": datetime.now(UTC).isoformat(),
    }
    producer = KafkaProducer(**dashboard.connection.client_kwargs(), acks="all")
    try:
        producer.send(
            dashboard.settings.topic_chat,
            key=b"live-conversation",
            value=json.dumps(payload).encode(),
        ).get(timeout=30)
    finally:
        producer.close()


def test_a_new_message_appears_live_without_reload(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    page.goto("/")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.__marker = 'still here'")
    page.check("#live")
    expect(page.locator("#live-status")).to_have_text("Live: waiting for new messages.")

    marker = uuid.uuid4().hex[:10]
    text = f"my card {marker} was declined twice today"
    failures: list[BaseException] = []

    def pipeline() -> None:
        try:
            produce_chat(dashboard, text)
            run_pipeline(dashboard.settings, dashboard.connection, 1)
        except BaseException as exc:  # handed to the test thread below
            failures.append(exc)

    writer = threading.Thread(target=pipeline, name="live-pipeline")
    writer.start()
    try:
        arrived = page.locator("#feed-list > li.event").filter(has_text=marker)
        expect(arrived).to_have_count(1, timeout=60_000)
    finally:
        writer.join(timeout=90)
    assert not failures, failures
    assert page.locator("#feed-list > li.event").first.get_attribute("data-input-id") == (
        arrived.get_attribute("data-input-id")
    )
    expect(page.locator("#live-status")).to_have_text("1 new message since live updates started.")
    assert arrived.locator("p.text span.w[data-weight]").count() == len(text.split())
    assert page.evaluate("window.__marker") == "still here"
    assert navigations == [], f"the page navigated: {navigations}"
    tab.finish()


def test_the_other_pages_load_cleanly(tab: Tab, dashboard: Dashboard) -> None:
    page = tab.page
    events = dashboard.events()
    chats = events[events["kind"] == "chat"]
    conversation = str(chats["conversation_id"].value_counts().index[0])
    news = events[events["kind"] == "news"]
    ticker = str(next(t for tickers in news["tickers"] for t in tickers))

    def visit(path: str, heading: str, suffix: str) -> None:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_contain_text(heading)
        # Every chart the page asks for is drawn.
        charts = page.locator(".plot[data-figure]")
        for i in range(charts.count()):
            expect(charts.nth(i).locator(".main-svg").first).to_be_attached()
        tab.finish(suffix)

    visit(f"/conversations/{quote(conversation, safe='')}", conversation, "conversation")
    assert page.locator("ol.conversation > li.event").count() == (
        len(chats[chats["conversation_id"] == conversation])
    )
    visit(f"/tickers/{quote(ticker, safe='')}?range=1h", ticker, "ticker")
    assert page.locator("ol.feed > li.event").count() >= 1
    visit("/alerts", "Alerts", "alerts")
    expect(page.locator("li.alert")).to_contain_text("negative share 70%")
    # What it fired on, as a person reads it on the page.
    expect(page.locator("li.alert p.fired")).to_have_text(
        "Fired on a negative share of 70% (40 messages) against 20% in the baseline "
        "(400 messages), z = 6.5."
    )
    visit("/model", "tiny-test", "model")
    expect(page.locator("body")).to_contain_text("sentiment")
