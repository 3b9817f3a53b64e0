"""The live feed: filters narrow it, keyset pages cover it, words are shaded by attention."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest

from models.words import word_spans
from pipeline.schema import WordWeight
from pipeline.store import open_store
from tests.unit.dashboards.conftest import MINUTE, N_CHATS, N_NEWS, T0, news
from tests.unit.dashboards.html import event_ids, events, html_lang, shaded_spans

ALL = N_CHATS + N_NEWS
#: The evidence paragraph's sentence, and each shaded word's text and weight in it.
EVIDENCE = re.compile(r'<p class="evidence"[^>]*><span class="label">[^<]*</span> (.*?)</p>')
SPAN = re.compile(r'<span class="w" data-word="([^"]*)" data-weight="([^"]*)"')


def api(client, **params):
    response = client.get("/api/events", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_feed_page_lists_the_newest_messages_first(client):
    page = client.get("/", params={"limit": 10})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert event_ids(page.text) == [f"news:{n}" for n in range(N_NEWS - 1, 1, -1)]
    assert html_lang(page.text) == "en"
    assert "intent" in page.text and "sentiment" in page.text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stream": "chat"}, {f"chat:{n}" for n in range(N_CHATS)}),
        ({"stream": "news"}, {f"news:{n}" for n in range(N_NEWS)}),
        ({"channel": "web"}, {f"chat:{n}" for n in range(1, N_CHATS, 2)}),
        (
            {"intent": "card_declined"},
            {f"chat:{n}" for n in range(N_CHATS) if n % 3 == 0 and n % 4 != 3},
        ),
        ({"sentiment": "negative", "stream": "news"}, {f"news:{n}" for n in range(0, N_NEWS, 3)}),
        ({"ticker": "NWB"}, {f"news:{n}" for n in range(N_NEWS) if n % 3 in (0, 2)}),
        ({"ticker": "nwbx"}, {f"news:{n}" for n in range(1, N_NEWS, 3)}),
        ({"source": "blog"}, {f"news:{n}" for n in range(1, N_NEWS, 2)}),
        ({"q": "REFUND"}, {f"chat:{n}" for n in range(1, N_CHATS, 4)}),
        (
            {"since": (T0 + 10 * MINUTE).isoformat(), "until": (T0 + 13 * MINUTE).isoformat()},
            {"chat:10", "chat:11", "chat:12"},
        ),
        ({"since": "2026-11-26T08:58:00"}, {"news:10", "news:11"}),
    ],
)
def test_filters_narrow_the_feed(client, params, expected):
    got = {row["input_id"] for row in api(client, **params)["rows"]}
    assert got == expected
    page = client.get("/", params={**params, "limit": 200})
    assert set(event_ids(page.text)) == expected


def test_free_text_takes_percent_and_underscore_literally(client):
    assert {r["input_id"] for r in api(client, q="100%")["rows"]} == {
        f"chat:{n}" for n in range(1, N_CHATS, 4)
    }
    assert {r["input_id"] for r in api(client, q="password_reset")["rows"]} == {
        f"chat:{n}" for n in range(2, N_CHATS, 4)
    }
    # As wildcards they would match every row; as characters they match none.
    assert api(client, q="%")["rows"] == [r for r in api(client, q="100%")["rows"]]
    assert api(client, q="_")["rows"] == api(client, q="password_")["rows"]
    assert api(client, q="d%r")["rows"] == []
    assert api(client, q="c_rd")["rows"] == []


def test_keyset_pages_are_disjoint_and_cover_every_row_in_order(client):
    seen, cursor, pages = [], "", 0
    while True:
        body = api(client, limit=7, cursor=cursor)
        seen.extend((r["event_time"], r["input_id"]) for r in body["rows"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == math.ceil(ALL / 7)
    assert len(seen) == len(set(seen)) == ALL
    assert seen == sorted(seen, reverse=True)


def test_keyset_pages_follow_the_filters_and_the_html_links(client):
    first = client.get("/", params={"stream": "chat", "limit": 20})
    link = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    assert "stream=chat" in link and "cursor=" in link
    second = client.get(link)
    ids = event_ids(first.text) + event_ids(second.text)
    assert ids[:20] == [f"chat:{n}" for n in range(N_CHATS - 1, N_CHATS - 21, -1)]
    assert ids[20:] == [f"chat:{n}" for n in range(N_CHATS - 21, N_CHATS - 41, -1)]
    assert "Newest messages" in second.text


def test_ties_in_event_time_are_broken_by_input_id(client, store_url):
    from pipeline.store import open_store
    from tests.unit.dashboards.conftest import chat

    same = [
        chat(100 + n).model_copy(update={"event_time": T0 + timedelta(hours=5)}) for n in range(5)
    ]
    with open_store(store_url) as store:
        store.write(same, [])
    first = api(client, limit=3)
    second = api(client, limit=3, cursor=first["next_cursor"])
    assert [r["input_id"] for r in first["rows"] + second["rows"]][:5] == [
        "chat:104",
        "chat:103",
        "chat:102",
        "chat:101",
        "chat:100",
    ]


def test_each_word_is_a_span_whose_weights_sum_to_the_attention(client):
    body = api(client, stream="chat", limit=5)
    page = client.get("/", params={"stream": "chat", "limit": 5})
    by_id = dict(events(page.text))
    for row in body["rows"]:
        spans = shaded_spans(by_id[row["input_id"]])
        assert [s["data-word"] for s in spans] == row["text"].split()
        weights = [float(s["data-weight"]) for s in spans]
        assert weights == [a["weight"] for a in row["sentiment_attention"]]
        assert sum(weights) == pytest.approx(1.0)
        assert all(s["title"] and "attention" in s["title"] for s in spans)


@pytest.mark.slow
def test_the_attention_toggle_shades_by_intent(client):
    body = api(client, stream="chat", limit=4)
    page = client.get("/", params={"stream": "chat", "limit": 4, "attention": "intent"})
    by_id = dict(events(page.text))
    for row in body["rows"]:
        spans = shaded_spans(by_id[row["input_id"]])
        # Agent turns have no intent: their sentiment attention is shown, and said so.
        task = "intent" if row["intent_attention"] else "sentiment"
        assert f'data-attention="{task}"' in by_id[row["input_id"]]
        weights = [float(s["data-weight"]) for s in spans]
        assert weights == [a["weight"] for a in row[f"{task}_attention"]]


def test_news_show_their_evidence_sentence_and_ticker_links(client):
    page = client.get("/", params={"stream": "news", "source": "blog", "limit": 200})
    html = dict(events(page.text))["news:1"]
    assert "Evidence sentence:" in html and "Analysts expect more gains next year." in html
    assert 'href="/tickers/NWBX"' in html


def test_the_evidence_sentence_is_shaded_by_its_own_words(client, store_url):
    sentence = "Analysts expect more gains next year."
    spans = word_spans(sentence)
    weights = [0.05, 0.1, 0.1, 0.5, 0.1, 0.1, 0.05]
    own = [
        WordWeight(word=sentence[a:b], weight=w, start=a, end=b)
        for (a, b), w in zip(spans, weights, strict=True)
    ]
    base = news(1)
    event = base.model_copy(
        update={
            "input_id": "news:own",
            "article_id": "own",
            "event_time": base.event_time + timedelta(hours=1),
            "sentiment": base.sentiment.model_copy(update={"evidence_attention": own}),
        }
    )
    with open_store(store_url) as store:
        store.write([event], [])
    page = client.get("/", params={"stream": "news", "limit": 200})
    shown = dict(events(page.text))
    (paragraph,) = EVIDENCE.findall(shown["news:own"])
    found = SPAN.findall(paragraph)
    assert [word for word, _ in found] == [w.word for w in own]
    assert [float(weight) for _, weight in found] == weights
    # The article text keeps the article's own shading; a row from before keeps plain text.
    assert sum(float(s["data-weight"]) for s in shaded_spans(shown["news:own"])) == pytest.approx(1)
    (older,) = EVIDENCE.findall(shown["news:1"])
    assert older == sentence and not SPAN.findall(older)


def test_the_fragment_has_the_rows_without_the_page(client):
    fragment = client.get("/feed", params={"stream": "news", "limit": 3})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert event_ids(fragment.text) == ["news:11", "news:10", "news:9"]


def test_shading_that_training_found_unfaithful_says_so(client, store_url):
    base = news(2)
    event = base.model_copy(
        update={
            "input_id": "news:unfaithful",
            "article_id": "unfaithful",
            "event_time": base.event_time + timedelta(hours=2),
            "sentiment": base.sentiment.model_copy(update={"attention_faithful": False}),
        }
    )
    trusted = base.model_copy(
        update={
            "input_id": "news:faithful",
            "article_id": "faithful",
            "event_time": base.event_time + timedelta(hours=2, minutes=1),
            "sentiment": base.sentiment.model_copy(update={"attention_faithful": True}),
        }
    )
    with open_store(store_url) as store:
        store.write([event, trusted], [])
    shown = dict(events(client.get("/", params={"stream": "news", "limit": 200}).text))
    assert "Attention not faithful for sentiment" in shown["news:unfaithful"]
    assert 'class="text unfaithful"' in shown["news:unfaithful"]
    for fine in ("news:faithful", "news:2"):  # measured faithful; an older row, not measured
        assert "not faithful" not in shown[fine] and "unfaithful" not in shown[fine]
