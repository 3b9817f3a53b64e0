"""``attnwatch deadletter list`` and ``replay`` in-process, on a SQLite store and a fake producer.

The real broker path is ``tests/integration/test_deadletter_replay.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from typer.testing import CliRunner, Result

from attnwatch.cli import app
from pipeline.schema import DeadLetter, SourceRef
from pipeline.store import open_store, read_dead_letters
from tests.support.producers import FakeFuture, FakeProducer

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = b'{"text": "my card 4111 was declined'


def letter(
    offset: int,
    *,
    reason: str = "invalid_json",
    topic: str = "chat",
    raw: bytes | None = SECRET,
    key: bytes | None = b"conv-1",
    minutes: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        source=SourceRef(topic=topic, partition=1, offset=offset),
        reason=reason,
        detail=f"EOF while parsing a string at line 1 column {offset}",
        raw=raw,
        received_time=T0 + timedelta(minutes=offset if minutes is None else minutes),
        key=key,
        headers=(
            ("trace-id", b"\x00\x01"),
            ("attnwatch.reason", b"stale"),  # from an earlier trip through the DLQ
        ),
        source_timestamp=T0 - timedelta(seconds=offset),
    )


@pytest.fixture
def store_url(tmp_path: Any) -> str:
    url = f"sqlite:///{tmp_path}/attnwatch.db"
    with open_store(url) as store:
        store.write(
            [],
            [
                letter(1),
                letter(2, reason="schema_violation"),
                letter(3, topic="news", raw=b""),
                letter(4, raw=None),  # a tombstone: null value, with a key
                letter(5, reason="too_large"),
            ],
        )
    return url


def attnwatch(store_url: str, *args: str, code: int = 0) -> Result:
    """Run ``attnwatch --store-url URL ARGS`` in this process."""
    result = CliRunner().invoke(
        app, ["--store-url", store_url, "--bootstrap-servers", "localhost:9", *args]
    )
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def listed(store_url: str, *args: str) -> list[dict[str, Any]]:
    out = attnwatch(store_url, "deadletter", "list", "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProducer]:
    fake = FakeProducer()
    monkeypatch.setattr("consumers.producer.make_producer", lambda connection, **kwargs: fake)
    yield fake
    assert None not in fake.flush_timeouts  # every wait is bounded


def test_deadletter_is_a_command_group_with_help() -> None:
    out = CliRunner().invoke(app, ["--help"]).stdout
    assert "deadletter" in out
    group = CliRunner().invoke(app, ["deadletter", "--help"]).stdout
    assert "list" in group and "replay" in group
    replay_help = CliRunner().invoke(app, ["deadletter", "replay", "--help"]).stdout
    # The help says why a replay does not duplicate what was processed.
    assert "input id" in replay_help and "--dry-run" in replay_help


def test_list_prints_a_table_without_the_value(store_url: str) -> None:
    out = attnwatch(store_url, "deadletter", "list").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "REASON", "DETAIL", "SOURCE", "RECEIVED", "VALUE", "REPLAYED"]
    assert len(lines) == 6
    assert "too_large" in lines[1] and "chat/1/5" in lines[1]  # most recent first
    assert "null" in lines[2] and "0 B" in lines[3]  # null and empty stay apart
    assert f"{len(SECRET)} B" in lines[1]
    assert "card" not in out and "4111" not in out
    assert "2025-03-01T12:05:00+00:00" in lines[1]


def test_list_json_and_filters(store_url: str) -> None:
    rows = listed(store_url)
    assert [r["source"]["offset"] for r in rows] == [5, 4, 3, 2, 1]
    first = rows[0]
    assert first["value_size"] == len(SECRET) and first["key_size"] == len(b"conv-1")
    assert first["header_names"] == ["trace-id", "attnwatch.reason"]
    assert first["replayed_time"] is None
    assert first["source_timestamp"] == (T0 - timedelta(seconds=5)).isoformat()
    assert not any("value_base64" in r or "4111" in json.dumps(r) for r in rows)
    assert (rows[1]["value_size"], rows[2]["value_size"]) == (None, 0)

    def offsets(*args: str) -> list[int]:
        return [r["source"]["offset"] for r in listed(store_url, *args)]

    assert offsets("--reason", "invalid_json") == [4, 3, 1]
    assert offsets("--reason", "too_large", "--reason", "schema_violation") == [5, 2]
    assert offsets("--topic", "news") == [3]
    assert offsets("--since", "2025-03-01T12:02:00Z", "--until", "2025-03-01T14:04:00+02:00") == [
        3,
        2,
    ]
    assert offsets("--limit", "2") == [5, 4]


def test_show_value_prints_value_key_and_headers(store_url: str) -> None:
    rows = listed(store_url, "--show-value", "--limit", "2")
    assert base64.b64decode(rows[0]["value_base64"]) == SECRET
    assert base64.b64decode(rows[0]["key_base64"]) == b"conv-1"
    name, value = rows[0]["headers"][0]
    assert (name, base64.b64decode(value)) == ("trace-id", b"\x00\x01")
    assert rows[1]["value_base64"] is None  # the null value
    table = attnwatch(store_url, "deadletter", "list", "--show-value", "--limit", "1").stdout
    assert "4111" in table and "conv-1" in table


@pytest.mark.parametrize(
    "value", ["2025-03-01T12:00:00", "yesterday", "2025-13-01T00:00Z"], ids=["naive", "word", "bad"]
)
def test_times_need_iso_8601_with_a_zone(store_url: str, value: str) -> None:
    result = attnwatch(store_url, "deadletter", "list", "--since", value, code=2)
    assert "--since" in result.stderr


def test_replay_dry_run_sends_and_marks_nothing(store_url: str, producer: FakeProducer) -> None:
    out = attnwatch(store_url, "deadletter", "replay", "--dry-run").stdout
    assert "dry run: 5 dead letters would be replayed" in out
    # Oldest first, each to its source topic.
    assert out.index("from chat/1/1 to chat") < out.index("from news/1/3 to news")
    assert producer.sends == []
    assert read_dead_letters(store_url, replayed=True).empty


def test_replay_sends_the_original_records_and_marks_them(
    store_url: str, producer: FakeProducer
) -> None:
    out = attnwatch(store_url, "deadletter", "replay", "--reason", "invalid_json").stdout
    assert "replayed 3 of 3" in out
    assert [(s["topic"], s["value"], s["key"]) for s in producer.sends] == [
        ("chat", SECRET, b"conv-1"),
        ("news", b"", b"conv-1"),
        ("chat", None, b"conv-1"),  # a null value stays null
    ]
    # The original headers, without the attnwatch.* ones.
    assert all(s["headers"] == [("trace-id", b"\x00\x01")] for s in producer.sends)
    assert producer.closed
    marked = read_dead_letters(store_url, replayed=True)
    assert sorted(marked["source_offset"]) == [1, 3, 4]
    assert (marked["replayed_time"] > T0).all()

    # Nothing is sent twice without --again.
    again = attnwatch(store_url, "deadletter", "replay", "--reason", "invalid_json").stdout
    assert "nothing to replay" in again
    assert len(producer.sends) == 3
    attnwatch(store_url, "deadletter", "replay", "--reason", "invalid_json", "--again")
    assert len(producer.sends) == 6


def test_replay_to_another_topic_with_a_limit(store_url: str, producer: FakeProducer) -> None:
    attnwatch(store_url, "deadletter", "replay", "--to-topic", "chat-fixed", "--limit", "2")
    assert [s["topic"] for s in producer.sends] == ["chat-fixed", "chat-fixed"]
    # The two oldest.
    assert sorted(read_dead_letters(store_url, replayed=True)["source_offset"]) == [1, 2]


def test_a_null_value_without_key_is_skipped(tmp_path: Any, producer: FakeProducer) -> None:
    url = f"sqlite:///{tmp_path}/keyless.db"
    with open_store(url) as store:
        store.write([], [letter(1, raw=None, key=None), letter(2)])
    result = attnwatch(url, "deadletter", "replay")
    assert "skipped dead letter" in result.stderr
    assert [s["value"] for s in producer.sends] == [SECRET]
    assert list(read_dead_letters(url, replayed=True)["source_offset"]) == [2]


def test_unacknowledged_records_are_not_marked(store_url: str, producer: FakeProducer) -> None:
    producer.fail_keys = {b"conv-1"}
    with open_store(store_url) as store:
        store.write([], [letter(6, key=b"other")])
    result = attnwatch(store_url, "deadletter", "replay", code=2)
    assert "replayed 1 of 6" in result.stdout
    assert "not acknowledged" in result.stderr
    assert list(read_dead_letters(store_url, replayed=True)["source_offset"]) == [6]


def test_a_send_that_cannot_start_stops_the_replay(
    store_url: str, producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_metadata(topic: str, **kwargs: Any) -> FakeFuture:
        raise KafkaTimeoutError("Failed to update metadata")

    monkeypatch.setattr(producer, "send", no_metadata)
    result = attnwatch(store_url, "deadletter", "replay", code=2)
    assert "Failed to update metadata" in result.stderr
    assert read_dead_letters(store_url, replayed=True).empty


def test_replay_needs_bootstrap_servers(store_url: str) -> None:
    result = CliRunner().invoke(app, ["--store-url", store_url, "deadletter", "replay"])
    assert result.exit_code == 2
    assert "bootstrap" in result.stderr
    assert read_dead_letters(store_url, replayed=True).empty
