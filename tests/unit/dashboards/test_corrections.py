"""Relabelling: a correction is stored, shown on the feed and exported as training data."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from dashboards.data.corrections import corrections_table
from models.data.loading import load_labelled
from pipeline.store import open_store
from tests.unit.dashboards.html import events


def relabel(client, input_id, **form):
    return client.post(f"/events/{input_id}/corrections", data=form, follow_redirects=False)


def test_a_correction_is_stored_and_redirects_back(client, store_url):
    response = relabel(
        client, "chat:0", task="sentiment", label="positive", analyst=" ann ", next="/?stream=chat"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/?stream=chat"
    with open_store(store_url) as store, store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(corrections_table))]
    assert len(rows) == 1
    row = rows[0]
    assert (row["input_id"], row["task"], row["old_label"], row["new_label"], row["analyst"]) == (
        "chat:0",
        "sentiment",
        "negative",
        "positive",
        "ann",
    )
    assert row["created_time"].tzinfo is not None


def test_the_feed_shows_the_correction(client):
    relabel(client, "chat:0", task="intent", label="refund_request", analyst="ann")
    relabel(client, "chat:0", task="intent", label="password_reset", analyst="bob")
    html = dict(events(client.get("/", params={"stream": "chat", "limit": 200}).text))["chat:0"]
    assert "Correction: intent card_declined → <strong>refund_request</strong> by ann" in html
    assert "Correction: intent refund_request → <strong>password_reset</strong> by bob" in html
    assert "intent: <strong>password_reset</strong>" in html
    assert "corrected; model: card_declined" in html
    api = client.get("/api/events", params={"stream": "chat", "limit": 200}).json()
    row = next(r for r in api["rows"] if r["input_id"] == "chat:0")
    assert [c["new_label"] for c in row["corrections"]] == ["refund_request", "password_reset"]


def test_a_background_post_gets_the_updated_event(client):
    response = client.post(
        "/events/news:1/corrections",
        data={"task": "sentiment", "label": "negative", "analyst": "ann"},
        headers={"X-Live": "fragment"},
    )
    assert response.status_code == 200
    assert dict(events(f"{response.text}</ol>"))["news:1"].count("Correction: sentiment") == 1


@pytest.mark.slow
def test_the_export_is_the_labelled_csv_train_reads(client, tmp_path):
    relabel(client, "chat:0", task="intent", label="refund_request", analyst="ann")
    relabel(client, "chat:0", task="intent", label="password_reset", analyst="ann")
    relabel(client, "chat:0", task="sentiment", label="neutral", analyst="ann")
    relabel(client, "news:1", task="sentiment", label="negative", analyst="ann")
    response = client.get("/corrections.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "text": "my card was declined again after the outage",
            "intent": "password_reset",
            "sentiment": "neutral",
        },
        {
            "text": "Bank profits rise as rates stay high\nAnalysts expect more gains next year.",
            "intent": "",
            "sentiment": "negative",
        },
    ]
    path = tmp_path / "corrections.csv"
    path.write_text(response.text, encoding="utf-8")
    examples = load_labelled(path)
    assert [e.labels for e in examples] == [
        {"intent": "password_reset", "sentiment": "neutral"},
        {"sentiment": "negative"},
    ]


def test_an_empty_export_has_the_header(client):
    assert client.get("/corrections.csv").text == "text,intent,sentiment\n"


@pytest.mark.parametrize(
    ("input_id", "form", "status", "message"),
    [
        ("chat:0", {"task": "topic", "label": "x", "analyst": "a"}, 400, "unknown task"),
        (
            "chat:0",
            {"task": "sentiment", "label": "furious", "analyst": "a"},
            400,
            "unknown sentiment label",
        ),
        (
            "chat:0",
            {"task": "intent", "label": "negative", "analyst": "a"},
            400,
            "unknown intent label",
        ),
        (
            "chat:0",
            {"task": "sentiment", "label": "positive", "analyst": "  "},
            400,
            "analyst is required",
        ),
        (
            "chat:0",
            {"task": "sentiment", "label": "positive", "analyst": "a" * 201},
            400,
            "longer than",
        ),
        (
            "news:0",
            {"task": "intent", "label": "card_declined", "analyst": "a"},
            400,
            "has no intent",
        ),
        (
            "chat:3",
            {"task": "intent", "label": "card_declined", "analyst": "a"},
            400,
            "has no intent",
        ),
        ("chat:999", {"task": "sentiment", "label": "positive", "analyst": "a"}, 404, "no event"),
    ],
)
def test_bad_corrections_are_refused_with_a_message(
    client, store_url, input_id, form, status, message
):
    response = relabel(client, input_id, **form)
    assert response.status_code == status
    assert message in response.json()["detail"]
    with open_store(store_url) as store, store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(corrections_table)).scalar() == 0


def test_cross_site_and_oversized_posts_are_refused(client):
    form = {"task": "sentiment", "label": "positive", "analyst": "a"}
    foreign = client.post(
        "/events/chat:0/corrections",
        data=form,
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403 and "cross-site" in foreign.json()["detail"]
    fetched = client.post(
        "/events/chat:0/corrections",
        data=form,
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert fetched.status_code == 403
    same = client.post(
        "/events/chat:0/corrections",
        data=form,
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert same.status_code == 303
    big = client.post("/events/chat:0/corrections", data={**form, "analyst": "a" * 20_000})
    assert big.status_code == 413
    garbled = client.post(
        "/events/chat:0/corrections",
        content=b"\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert garbled.status_code == 400


def test_a_redirect_never_leaves_the_site(client):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = relabel(
            client, "chat:0", task="sentiment", label="positive", analyst="a", next=target
        )
        assert response.headers["location"] == "/#event-chat-0"


def test_json_bodies_work_too(client):
    response = client.post(
        "/events/chat:0/corrections",
        follow_redirects=False,
        json={"task": "sentiment", "label": "positive", "analyst": "a"},
    )
    assert response.status_code == 303
    assert client.post("/events/chat:0/corrections", json=["x"]).status_code == 400


def test_labels_come_from_the_model_directory(client, model_dir):
    (model_dir / "labels.json").unlink()
    response = relabel(client, "chat:0", task="sentiment", label="positive", analyst="a")
    assert response.status_code == 400
    assert "no sentiment labels" in response.json()["detail"]
