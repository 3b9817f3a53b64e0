"""Every bad parameter is a 4xx with a message saying what is wrong; never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.data.filters import Cursor

BAD = [
    ("/?stream=tweets", 400, "unknown stream"),
    ("/api/events?stream=tweets", 400, "unknown stream"),
    ("/export.csv?stream=tweets", 400, "unknown stream"),
    ("/export.parquet?stream=tweets", 400, "unknown stream"),
    ("/events/stream?stream=tweets", 400, "unknown stream"),
    ("/?since=yesterday", 400, "not an ISO 8601 time"),
    ("/?until=2026-13-40", 400, "not an ISO 8601 time"),
    ("/?since=2026-11-26T10:00:00Z&until=2026-11-26T09:00:00Z", 400, "bad time range"),
    ("/?since=2026-11-26T10:00:00Z&until=2026-11-26T10:00:00Z", 400, "bad time range"),
    ("/api/events?cursor=not-a-cursor", 400, "malformed cursor"),
    ("/?cursor=bm90IGpzb24", 400, "malformed cursor"),  # base64 of "not json"
    ("/?cursor=WzEsMl0", 400, "malformed cursor"),  # [1,2]
    ("/?cursor=WyIyMDI2LTExLTI2VDA4OjAwOjAwIiwiY2hhdDoxIl0", 400, "malformed cursor"),  # naive
    ("/events/stream?after=%%%", 400, "malformed"),
    ("/?limit=0", 422, "limit"),
    ("/?limit=201", 422, "limit"),
    ("/?limit=many", 422, "limit"),
    ("/?attention=gradient", 400, "unknown attention"),
    ("/?ticker=not%20a%20ticker", 400, "ticker"),
    ("/?q=" + "x" * 201, 400, "longer than"),
    ("/trends?range=forever", 400, "unknown range"),
    ("/trends?by=colour", 400, "unknown grouping"),
    ("/api/trends?since=2999-01-01T00:00:00Z", 400, "bad time range"),
    ("/trends?stream=tweets", 400, "unknown stream"),
    ("/tickers/not-a-ticker!", 400, "ticker"),
    ("/tickers/NWB?range=1y", 400, "unknown range"),
    ("/tickers/NWB?since=soon", 400, "ISO 8601"),
    ("/alerts?status=snoozed", 400, "unknown status"),
    ("/alerts?limit=-1", 422, "limit"),
    ("/conversations/no-such-conversation", 404, "no conversation"),
    ("/export.csv?limit=0", 422, "limit"),
    ("/trends?until=0001-01-01T00:00:00", 400, "until must be from 1970"),
    ("/?since=0001-01-01T00:00:00%2B14:00", 400, "since must be from 1970"),
    ("/?q=a%00b", 400, "NUL"),
    ("/api/events?cursor=WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTA1OjAwIiwiYSJd", 400, "malformed"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD)
def test_bad_parameters_get_a_4xx_with_a_message(client, path, status, message):
    response = client.get(path)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize(("path", "status", "message"), BAD[:10])
def test_browsers_get_the_message_as_a_page(client, path, status, message):
    response = client.get(path, headers={"accept": "text/html"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text and 'lang="en"' in response.text


def test_a_cursor_round_trips():
    from datetime import UTC, datetime

    cursor = Cursor(datetime(2026, 11, 26, 8, tzinfo=UTC), "chat:1/x?y")
    assert Cursor.decode(cursor.encode()) == cursor


PARAMETERS = [
    "stream",
    "channel",
    "intent",
    "sentiment",
    "ticker",
    "source",
    "since",
    "until",
    "q",
    "cursor",
    "limit",
    "attention",
    "range",
    "by",
    "status",
]


VALUES = st.one_of(
    st.text(max_size=40),
    st.datetimes().map(lambda t: t.isoformat()),
    st.sampled_from(
        [
            "chat",
            "news",
            "all",
            "1h",
            "30d",
            "ticker",
            "intent",
            "firing",
            "0",
            "-1",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
        ]
    ),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        ["/", "/api/events", "/feed", "/api/trends", "/alerts", "/export.csv", "/tickers/NWB"]
    ),
    params=st.dictionaries(st.sampled_from(PARAMETERS), VALUES, max_size=4),
)
@pytest.mark.slow
def test_no_parameter_makes_a_500(client, path, params):
    response = client.get(path, params=params)
    assert response.status_code < 500, (path, params, response.text)
    if response.status_code >= 400:
        assert response.json()["detail"]
