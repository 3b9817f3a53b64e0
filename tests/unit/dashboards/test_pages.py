"""The chart and detail pages: trends, conversation, ticker, alerts, model, static files."""

from __future__ import annotations

import importlib.resources
import json
import re

import pytest

from dashboards.web.charts import SENTIMENT_COLOURS
from tests.unit.dashboards.conftest import N_CHATS, N_NEWS, T0, write_model_dir
from tests.unit.dashboards.html import (
    event_ids,
    events,
    html_lang,
    shaded_spans,
    unlabelled_controls,
)

WINDOW = {"since": "2026-11-26T07:30:00Z", "until": "2026-11-26T09:30:00Z"}


def figures(page: str) -> dict[str, dict]:
    """The plotly figures embedded in a page, by chart id."""
    found = re.findall(
        r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>', page, re.S
    )
    return {name: json.loads(body) for name, body in found}


def test_trends_counts_shares_and_alert_bands(client):
    body = client.get("/api/trends", params=WINDOW).json()
    assert body["total"] == N_CHATS + N_NEWS
    share = body["figures"]["share"]
    assert [t["name"] for t in share["data"]] == ["negative", "neutral", "positive"]
    assert [t["marker"]["color"] for t in share["data"]] == list(SENTIMENT_COLOURS.values())
    for i in range(len(share["data"][0]["x"])):
        assert sum(t["y"][i] for t in share["data"]) == pytest.approx(1.0)
    assert sum(sum(t["customdata"]) for t in share["data"]) == N_CHATS + N_NEWS
    bands = share["layout"]["shapes"]
    assert [(b["x0"], b["x1"]) for b in bands] == [
        ("2026-11-26 08:10:00", "2026-11-26 08:20:00"),
        ("2026-11-26 08:30:00", "2026-11-26 09:30:00"),  # still open: to the window's end
    ]
    notes = [a["text"] for a in share["layout"]["annotations"]]
    assert notes == ["alert (resolved): channel app", "alert (open): intent card_declined"]
    groups = body["figures"]["groups"]
    assert [t["name"] for t in groups["data"]] == ["app", "web"]  # news have no channel
    assert body["groups"] == ["app", "web"]
    volume = body["figures"]["volume"]
    assert sum(sum(t["y"]) for t in volume["data"]) == N_CHATS + N_NEWS
    intents = body["figures"]["intents"]["data"][0]
    assert sum(intents["x"]) == 36 and set(intents["y"]) == {
        "card_declined",
        "password_reset",
        "refund_request",
    }


@pytest.mark.parametrize(
    ("by", "groups"),
    [
        ("ticker", ["NWB", "AAPL", "NWBX"]),
        ("source", ["blog", "wire"]),
        ("intent", ["card_declined", "password_reset", "refund_request"]),
    ],
)
def test_trends_split_by_other_groupings(client, by, groups):
    body = client.get("/api/trends", params={**WINDOW, "by": by}).json()
    assert body["groups"] == groups
    assert body["total"] == N_CHATS + N_NEWS


def test_trends_follow_the_filters_and_the_window(client):
    chats = client.get("/api/trends", params={**WINDOW, "stream": "chat", "channel": "web"})
    assert chats.json()["total"] == N_CHATS // 2
    news = client.get("/api/trends", params={**WINDOW, "stream": "news"}).json()
    assert news["by"] == "source" and news["groups"] == ["blog", "wire"]
    short = client.get(
        "/api/trends", params={"since": "2026-11-26T08:00:00Z", "until": "2026-11-26T08:10:00Z"}
    ).json()
    assert short["total"] == 10 and short["bucket_s"] == 60
    preset = client.get("/api/trends", params={"range": "1h", "until": "2026-11-26T08:30:00Z"})
    assert preset.json()["total"] == 30 and preset.json()["start"] == "2026-11-26T07:30:00+00:00"


def test_charts_default_to_the_data_s_own_time_range(client):
    # The fixture's events lie in 2026, hours or days before "now": a window ending now
    # (the former default) would show none of them.
    body = client.get("/api/trends").json()
    assert body["total"] == N_CHATS + N_NEWS
    assert body["start"] == "2026-11-26T08:00:00+00:00"
    assert body["end"] == "2026-11-26T08:59:01+00:00"  # the last event, included
    news = client.get("/api/trends", params={"stream": "news"}).json()
    assert news["start"] == "2026-11-26T08:48:00+00:00" and news["total"] == N_NEWS
    assert client.get("/api/trends", params={"range": "data"}).json()["total"] == N_CHATS + N_NEWS
    page = client.get("/trends").text
    assert '<option value="data" selected>' in page
    ticker = client.get("/tickers/NWBX").text
    assert event_ids(ticker) == ["news:10", "news:7", "news:4", "news:1"]
    # A preset is still a window ending now: nothing of 2026-11-26 in the last hour.
    assert client.get("/api/trends", params={"range": "1h"}).json()["total"] == 0


def test_the_trends_page_embeds_the_figures_and_loads_plotly_locally(client):
    page = client.get("/trends", params=WINDOW).text
    assert set(figures(page)) == {"share", "groups", "volume", "intents"}
    assert '<script src="/vendor/plotly.min.js" defer></script>' in page
    assert "https://" not in page.split("<body>")[0]  # nothing from a CDN
    assert unlabelled_controls(page) == []


def test_a_conversation_turn_by_turn_with_the_customer_trajectory(client):
    page = client.get("/conversations/c2")
    assert page.status_code == 200
    assert event_ids(page.text) == ["chat:8", "chat:9", "chat:10", "chat:11"]
    figure = figures(page.text)["trajectory"]
    trace = figure["data"][0]
    assert trace["text"] == ["positive", "negative", "neutral"]  # customer turns only
    assert trace["y"] == pytest.approx([0.8 - 0.1, 0.1 - 0.8, 0.1 - 0.1])
    assert trace["x"] == [1, 2, 3]  # by turn (the 4th is the agent's), not by time
    assert figure["layout"]["xaxis"]["title"]["text"] == "turn"
    assert trace["customdata"] == [f"2026-11-26 08:{m:02d}:00" for m in (8, 9, 10)]
    assert client.get("/conversations/nope").status_code == 404


@pytest.mark.slow
def test_a_ticker_page_has_its_headlines_evidence_and_shading(client):
    page = client.get("/tickers/NWB", params=WINDOW)
    assert page.status_code == 200
    assert event_ids(page.text) == [
        "news:11",
        "news:9",
        "news:8",
        "news:6",
        "news:5",
        "news:3",
        "news:2",
        "news:0",
    ]
    share = figures(page.text)["share"]
    assert sum(sum(t["customdata"]) for t in share["data"]) == 8
    assert client.get("/tickers/nwb", params=WINDOW).status_code == 200  # upper-cased
    other = client.get("/tickers/NWBX", params=WINDOW).text
    assert event_ids(other) == ["news:10", "news:7", "news:4", "news:1"]
    html = dict(events(other))["news:10"]
    assert "Evidence sentence:</span> Analysts expect more gains next year." in html
    spans = shaded_spans(html)
    assert [s["data-word"] for s in spans][-2:] == ["next", "year."]
    assert sum(float(s["data-weight"]) for s in spans) == pytest.approx(1.0)


def test_alerts_open_and_resolved_with_evidence_and_feed_links(client):
    page = client.get("/alerts").text
    assert page.index("intent card_declined") < page.index("channel app")  # newest first
    assert "open" in page and "resolved" in page
    assert "my card was declined again" in page and "declined" in page
    assert "31.0%" in page  # a rising word's current share
    assert '<tr data-z="4.2">' in page and "<td>4.2</td>" in page  # and its log-odds z
    resolved = page[page.index("channel app") :]
    # What it fired on and how it ended, both on the resolved episode.
    assert (
        "Fired on a negative share of 70% (40 messages) against 20% in the baseline "
        "(400 messages), z = 6.5." in resolved
    )
    assert "Ended at 49% (273 messages) against 54% in the baseline (925 messages)." in resolved
    still_open = page[: page.index("channel app")]
    assert "Fired on a negative share of 70% (40 messages)" in still_open
    assert "Ended at" not in still_open
    links = re.findall(r'href="(/\?[^"]+)"', page)
    app_link = next(link for link in links if "channel=app" in link).replace("&amp;", "&")
    feed = client.get("/api/events" + app_link[1:] + "&limit=200").json()
    ids = {r["input_id"] for r in feed["rows"]}
    # From a current window (15 min) before the episode to its end, app channel only.
    assert ids == {f"chat:{n}" for n in range(0, 20, 2)}
    only_open = client.get("/alerts", params={"status": "firing"}).text
    assert "channel app" not in only_open and "intent card_declined" in only_open


def test_the_model_page(client):
    page = client.get("/model").text
    for shown in (
        "test-model",
        "abc123def456",
        "refund_request",
        "0.850",
        "temperature",
        "unknown threshold",
        "Explanation faithfulness: sentiment",
        "0.412",
    ):
        assert shown in page, shown
    assert figures(page)["confusion-sentiment"]["data"][0]["z"] == [[3, 0, 0], [1, 2, 0], [0, 0, 3]]
    assert "not measured" not in page


def test_the_model_page_shows_training_s_faithfulness_verdict(client, model_dir):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    check = {"n": 200, "k": 0.2, "sufficiency": {}}
    metrics["faithfulness"] = {
        "intent": {
            **check,
            "comprehensiveness": {"attention": 0.175, "grad_x_input": 0.473, "random": 0.187},
            "vs_random": 0.94,
            "vs_gradient": 0.37,
            "faithful": False,
            "reason": "0.175 < 2 x random (0.187)",
        },
        "sentiment": {
            **check,
            "comprehensiveness": {"attention": 0.649, "grad_x_input": 0.469, "random": 0.192},
            "vs_random": 3.38,
            "vs_gradient": 1.38,
            "faithful": True,
            "reason": "3.38x random, 1.38x gradient x input",
        },
    }
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    page = client.get("/model").text
    assert "Attention not faithful for intent" in page and "0.175 &lt; 2 x random" in page
    assert 'data-task="intent" data-faithful="false"' in page
    assert 'data-task="sentiment" data-faithful="true"' in page and "3.38x" in page
    assert "Attention not faithful for sentiment" not in page


def test_the_model_page_says_what_is_missing(client, model_dir, tmp_path):
    write_model_dir(model_dir, faithfulness=False)
    assert "Faithfulness: not measured" in client.get("/model").text
    (model_dir / "metrics.json").write_text("{not json")
    page = client.get("/model")
    assert page.status_code == 200 and "metrics.json could not be read" in page.text


def test_a_missing_model_directory_still_serves_pages(settings, tmp_path):
    from fastapi.testclient import TestClient

    from attnwatch.cli.dashboard import dashboard_app
    from pipeline.config import ModelSettings

    settings = settings.model_copy(update={"model": ModelSettings(dir=tmp_path / "none")})
    with TestClient(dashboard_app(settings)) as client:
        assert "no model directory" in client.get("/model").text
        assert client.get("/").status_code == 200  # no relabel forms, still a feed


def test_plotly_js_is_the_wheels_own_copy(client):
    wheel = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    response = client.get("/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == wheel.read_bytes()


def test_static_files_and_health(client):
    script = client.get("/static/live.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert "htmx" not in script.text.lower().replace("htmx would", "")
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/trends",
        "/alerts",
        "/model",
        "/conversations/c1",
        "/tickers/NWB",
        "/?stream=chat&cursor=",
        "/nowhere",
    ],
)
def test_every_page_has_a_language_and_labelled_controls(client, path):
    page = client.get(path, headers={"accept": "text/html"}).text
    assert html_lang(page) == "en"
    assert unlabelled_controls(page) == []
    assert 'class="skip" href="#main"' in page


def test_times_are_utc(client):
    page = client.get("/conversations/c0").text
    assert f'datetime="{T0.isoformat()}"' in page and "2026-11-26 08:00:00 UTC" in page
