"""Live updates by server-sent events: new rows arrive, reconnects resume, connections end."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import dashboards.web.live as live
from dashboards.data.corrections import CorrectionTable
from dashboards.data.filters import Cursor, EventFilter
from dashboards.data.queries import Queries
from dashboards.web.live import live_events
from pipeline.store import open_store
from tests.unit.dashboards.conftest import T0, chat


def parse(stream: str) -> list[dict[str, str]]:
    """The events of an SSE body as dicts of their fields."""
    found = []
    for block in stream.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                fields.setdefault("comment", line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        found.append(fields)
    return found


def later(n: int, seconds: int = 3600):
    event = chat(n)
    at = T0 + timedelta(seconds=seconds)
    return event.model_copy(update={"event_time": at, "processed_time": at})


def test_rows_written_while_connected_arrive_newest_first(client, store_url):
    def write_soon() -> None:
        time.sleep(0.15)
        with open_store(store_url) as store:
            store.write([later(900), later(901, 3601)], [])

    writer = threading.Thread(target=write_soon)
    writer.start()
    response = client.get("/events/stream", params={"stream": "chat"})
    writer.join()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    sent = parse(response.text)
    assert sent[0]["event"] == "hello" and sent[0]["retry"] == "1000"
    rows = [e for e in sent if e.get("event") == "rows"]
    assert len(rows) == 1
    data = json.loads(rows[0]["data"])
    assert data["count"] == 2
    assert data["html"].index('data-input-id="chat:901"') < data["html"].index(
        'data-input-id="chat:900"'
    )
    assert Cursor.decode(rows[0]["id"]) == Cursor(T0 + timedelta(seconds=3601), "chat:901")
    assert sent[-1]["event"] == "end"  # the connection is bounded (live_max_s)


def test_the_stream_keeps_the_filters(client, store_url):
    def write_soon() -> None:
        time.sleep(0.1)
        with open_store(store_url) as store:
            store.write([later(910)], [])

    writer = threading.Thread(target=write_soon)
    writer.start()
    response = client.get("/events/stream", params={"stream": "news"})
    writer.join()
    assert [e for e in parse(response.text) if e.get("event") == "rows"] == []


def test_a_reconnect_resumes_after_the_last_event_id(client):
    start = Cursor(T0 + timedelta(minutes=55, seconds=1), "news:7").encode()
    response = client.get("/events/stream", headers={"Last-Event-ID": start})
    rows = [e for e in parse(response.text) if e.get("event") == "rows"]
    html = json.loads(rows[0]["data"])["html"]
    assert [f"news:{n}" in html for n in (7, 8, 9, 10, 11)] == [False, True, True, True, True]
    assert parse(response.text)[0]["id"] == start
    bad = client.get("/events/stream", headers={"Last-Event-ID": "garbage"})
    assert bad.status_code == 400 and "malformed" in bad.json()["detail"]


def test_without_a_position_only_rows_processed_later_are_sent(client):
    response = client.get("/events/stream")
    sent = parse(response.text)
    assert [e for e in sent if e.get("event") == "rows"] == []
    assert Cursor.decode(sent[0]["id"]) == Cursor(T0 + timedelta(minutes=59, seconds=1), "news:11")


def test_a_client_that_goes_away_ends_the_stream(store_url):
    with open_store(store_url) as store:
        queries = Queries(store, CorrectionTable(store.engine))
        polls = []

        async def gone() -> bool:
            polls.append(1)
            return len(polls) > 2

        async def run() -> list[bytes]:
            return [
                chunk
                async for chunk in live_events(
                    queries, EventFilter(), None, lambda rows: "", gone, poll_s=0.01, max_s=60
                )
            ]

        started = time.monotonic()
        chunks = asyncio.run(run())
        assert time.monotonic() - started < 5
        assert len(polls) == 3
        assert b"event: end" not in b"".join(chunks)  # nobody left to tell


def test_a_backlog_is_sent_in_bounded_batches(store_url, monkeypatch):
    monkeypatch.setattr(live, "MAX_ROWS_PER_POLL", 25)
    with open_store(store_url) as store:
        queries = Queries(store, CorrectionTable(store.engine))

        async def never() -> bool:
            return False

        async def run() -> list[bytes]:
            start = Cursor(T0 - timedelta(days=1), "-")
            return [
                chunk
                async for chunk in live_events(
                    queries,
                    EventFilter(),
                    start,
                    lambda rows: str(len(rows)),
                    never,
                    poll_s=0.01,
                    max_s=0.3,
                )
            ]

        chunks = asyncio.run(run())
    sent = parse(b"".join(chunks).decode())
    counts = [json.loads(e["data"])["count"] for e in sent if e.get("event") == "rows"]
    assert counts == [25, 25, 10]  # the fixture's 60 events
