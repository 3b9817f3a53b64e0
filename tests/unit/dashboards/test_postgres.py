"""The same app on a real PostgreSQL server: the dialect-specific parts hold there too.

Time buckets (``extract(epoch ...)``), ``ILIKE`` with escaping, ``GROUP BY`` over a
subquery, ``CREATE INDEX CONCURRENTLY`` and ``RETURNING`` differ from SQLite.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from attnwatch.cli.dashboard import dashboard_app
from attnwatch.settings import Settings
from dashboards.data.indexes import INDEXES
from pipeline.store import open_store
from tests.support.postgres import drop_everything
from tests.unit.dashboards.conftest import N_CHATS, N_NEWS, chat, fill_alerts, news

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_client(postgres_url: str, model_dir) -> Iterator[TestClient]:
    drop_everything(postgres_url)
    with open_store(postgres_url) as store:
        store.write([chat(n) for n in range(N_CHATS)] + [news(n) for n in range(N_NEWS)], [])
        fill_alerts(store.engine)
    settings = Settings(store_url=postgres_url, model_dir=model_dir)
    try:
        with TestClient(dashboard_app(settings, live_max_s=0.3)) as client:
            yield client
    finally:
        drop_everything(postgres_url)


def test_the_app_on_postgresql(pg_client, postgres_url):
    client = pg_client
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        names = {i["name"] for i in sa.inspect(engine).get_indexes("events")}
    finally:
        engine.dispose()
    assert {i.name for i in INDEXES} <= names

    def ids(**params):
        body = client.get("/api/events", params={"limit": 200, **params}).json()
        return {r["input_id"] for r in body["rows"]}

    assert ids(q="100%") == {f"chat:{n}" for n in range(1, N_CHATS, 4)}
    assert ids(q="d%r") == set() and ids(q="REFUND") == ids(q="100%")
    assert ids(ticker="NWB") == {f"news:{n}" for n in range(N_NEWS) if n % 3 in (0, 2)}

    seen, cursor = [], ""
    while cursor is not None:
        body = client.get("/api/events", params={"limit": 7, "cursor": cursor}).json()
        seen += [(r["event_time"], r["input_id"]) for r in body["rows"]]
        cursor = body["next_cursor"]
    assert len(set(seen)) == N_CHATS + N_NEWS and seen == sorted(seen, reverse=True)

    window = {"since": "2026-11-26T07:30:00Z", "until": "2026-11-26T09:30:00Z"}
    trends = client.get("/api/trends", params={**window, "by": "ticker"}).json()
    assert trends["total"] == N_CHATS + N_NEWS and trends["groups"][0] == "NWB"
    volume = trends["figures"]["volume"]["data"]
    assert volume[0]["x"][0] == "2026-11-26 08:00:00"
    assert len(trends["figures"]["share"]["layout"]["shapes"]) == 2

    form = {"task": "intent", "label": "refund_request", "analyst": "ann"}
    assert (
        client.post("/events/chat:0/corrections", data=form, follow_redirects=False).status_code
        == 303
    )
    assert client.get("/corrections.csv").text.splitlines()[1] == (
        "my card was declined again after the outage,refund_request,"
    )
    frame = pd.read_csv(io.StringIO(client.get("/export.csv", params={"limit": 5}).text))
    assert len(frame) == 5 and json.loads(frame.loc[0, "tickers"]) == ["AAPL", "NWB"]
    assert client.get("/export.parquet").status_code == 200
    for path in (
        "/",
        "/trends",
        "/alerts",
        "/model",
        "/conversations/c1",
        "/tickers/NWB",
        "/events/stream",
    ):
        assert client.get(path).status_code == 200, path
