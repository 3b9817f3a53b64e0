"""Exports: the feed's filters as CSV (streamed) and Parquet, capped, read back by pandas."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from dashboards.data.queries import MAX_EXPORT_ROWS
from pipeline.store import read_events
from tests.unit.dashboards.conftest import N_CHATS, N_NEWS


def test_csv_has_the_filtered_rows_newest_first(client, store_url):
    response = client.get("/export.csv", params={"stream": "news", "ticker": "NWB"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(response.text))
    expected = read_events(store_url, kind="news", ticker="NWB")
    assert list(frame["input_id"]) == list(expected["input_id"])
    assert list(frame.columns) == list(expected.columns)
    first = json.loads(frame.loc[0, "sentiment_attention"])
    assert first == expected.loc[0, "sentiment_attention"]
    assert pd.to_datetime(frame["event_time"], utc=True).equals(expected["event_time"])


def test_csv_streams_in_chunks_and_stops_at_the_limit(client, monkeypatch):
    import dashboards.data.queries as queries

    monkeypatch.setattr(queries, "EXPORT_CHUNK", 7)
    with client.stream("GET", "/export.csv", params={"limit": 25}) as response:
        pieces = list(response.iter_text())
    frame = pd.read_csv(io.StringIO("".join(pieces)))
    assert len(frame) == 25
    assert frame["input_id"].is_unique
    everything = pd.read_csv(io.StringIO(client.get("/export.csv").text))
    assert len(everything) == N_CHATS + N_NEWS
    assert list(frame["input_id"]) == list(everything["input_id"][:25])


def test_an_empty_csv_has_the_header(client):
    text = client.get("/export.csv", params={"q": "no such words"}).text
    assert text.startswith("input_id,schema_version,kind,")
    assert len(text.strip().splitlines()) == 1


@pytest.mark.slow
def test_parquet_keeps_types_and_nesting(client, store_url):
    response = client.get(
        "/export.parquet", params={"stream": "chat", "channel": "app", "limit": 10}
    )
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    frame = table.to_pandas()
    expected = read_events(store_url, kind="chat").query("channel == 'app'").head(10)
    assert list(frame["input_id"]) == list(expected["input_id"])
    assert str(frame["event_time"].dt.tz) == "UTC"
    assert [dict(w) for w in frame.loc[0, "sentiment_attention"]] == expected.iloc[0][
        "sentiment_attention"
    ]
    assert list(frame.loc[0, "tickers"]) == []


def test_an_empty_parquet_file_reads_back(client):
    response = client.get("/export.parquet", params={"q": "no such words"})
    assert pq.read_table(io.BytesIO(response.content)).num_rows == 0


def test_exports_are_capped(client):
    for path in ("/export.csv", "/export.parquet"):
        response = client.get(path, params={"limit": MAX_EXPORT_ROWS + 1})
        assert response.status_code == 422
        assert "limit" in response.json()["detail"]


def test_parquet_types_do_not_depend_on_the_rows(client, monkeypatch):
    import dashboards.data.queries as queries

    # Chunks of news only, then chats: a column empty in one chunk keeps its type.
    monkeypatch.setattr(queries, "EXPORT_CHUNK", 5)
    news_only = pq.read_table(
        io.BytesIO(client.get("/export.parquet", params={"stream": "news"}).content)
    )
    mixed = pq.read_table(io.BytesIO(client.get("/export.parquet").content))
    assert news_only.schema == mixed.schema
    assert str(mixed.schema.field("intent_attention").type) == (
        "list<element: struct<word: string, weight: double, start: int64, end: int64>>"
    )
    assert mixed.num_rows == N_CHATS + N_NEWS
    assert mixed.to_pandas()["intent_label"].notna().sum() == 36
