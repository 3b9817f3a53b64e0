"""Live updates by server-sent events: new rows arrive, reconnects resume, connections end."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

import dashboards.web.live as live
from attnwatch.cli.dashboard import dashboard_app
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


class WriteWhileConnected:
    """Writes ``events`` once the stream has read its start position, then counts its polls.

    The stream sends only rows processed after that read, so the write waits for it (a
    signal from ``Queries.newest_processed``), not for a fixed time; ``polls_after`` counts
    the store reads the stream made after the write had committed.
    """

    def __init__(self, monkeypatch, store_url, events) -> None:
        self.started = threading.Event()
        self.written = threading.Event()
        self.polls_after = 0
        newest, after = Queries.newest_processed, Queries.processed_after

        def newest_processed(queries):
            found = newest(queries)
            self.started.set()
            return found

        def processed_after(queries, *args):
            if self.written.is_set():
                self.polls_after += 1
            return after(queries, *args)

        monkeypatch.setattr(Queries, "newest_processed", newest_processed)
        monkeypatch.setattr(Queries, "processed_after", processed_after)

        def write() -> None:
            if self.started.wait(10):  # bounded: a stream that never starts fails below
                with open_store(store_url) as store:
                    store.write(events, [])
                self.written.set()

        self.thread = threading.Thread(target=write)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(10)
        assert self.written.is_set(), "the stream never read its start position"


@pytest.fixture
def long_client(settings):
    """A client whose streams last 2 s (the shared one's last 0.5 s): the write, one poll after
    it and the end event must all fit in one connection, also on a loaded machine."""
    with TestClient(dashboard_app(settings, live_poll_s=0.05, live_max_s=2.0)) as test_client:
        yield test_client


def test_rows_written_while_connected_arrive_newest_first(long_client, store_url, monkeypatch):
    writer = WriteWhileConnected(monkeypatch, store_url, [later(900), later(901, 3601)])
    response = long_client.get("/events/stream", params={"stream": "chat"})
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


def test_the_stream_keeps_the_filters(long_client, store_url, monkeypatch):
    writer = WriteWhileConnected(monkeypatch, store_url, [later(910)])
    response = long_client.get("/events/stream", params={"stream": "news"})
    writer.join()
    assert writer.polls_after >= 1  # the stream looked after the chat row was there
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
